package main

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// loadConfigFile reads a YAML config file over cfg, then re-applies the flags given on the command
// line so that they win. Unknown keys are an error: a typo must not silently do nothing.
func loadConfigFile(path string, cfg *Config, fs *pflag.FlagSet) error {
	type given struct {
		flag *pflag.Flag
		vals []string
	}
	var set []given
	fs.Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			set = append(set, given{f, sv.GetSlice()})
		} else {
			set = append(set, given{f, []string{f.Value.String()}})
		}
	})
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := decodeConfig(path, data, cfg); err != nil {
		return err
	}
	for _, g := range set {
		if sv, ok := g.flag.Value.(pflag.SliceValue); ok {
			if err := sv.Replace(g.vals); err != nil {
				return err
			}
			continue
		}
		if err := g.flag.Value.Set(g.vals[0]); err != nil {
			return err
		}
	}
	return nil
}

// configError is what is wrong with a config file, each problem with its line, in the user's
// words: "trawl.yaml line 3: unknown key perhost (did you mean per_host?)".
type configError struct {
	file     string
	problems []string // "line N: ..."
}

func (e *configError) Error() string {
	if len(e.problems) == 1 {
		return "config " + e.file + " " + e.problems[0]
	}
	return "config " + e.file + ":\n  " + strings.Join(e.problems, "\n  ")
}

// decodeConfig sets cfg's fields from the YAML config data (named file in errors). It walks the
// document itself rather than letting yaml decode into Config, so that every problem is told with
// its line and the key the user wrote, durations take days, and a typo gets a suggestion.
func decodeConfig(file string, data []byte, cfg *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &configError{file, []string{yamlSyntax(err)}}
	}
	if len(doc.Content) == 0 {
		return nil // empty, or comments only
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil
	}
	if top.Kind != yaml.MappingNode {
		return &configError{file, []string{fmt.Sprintf("line %d: want settings as key: value lines, like \"concurrency: 32\"", top.Line)}}
	}
	fields := configFields()
	v := reflect.ValueOf(cfg).Elem()
	e := &configError{file: file}
	seen := map[string]int{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, val := top.Content[i], top.Content[i+1]
		key := k.Value
		idx, ok := fields[key]
		switch {
		case !ok:
			e.problems = append(e.problems, fmt.Sprintf("line %d: unknown key %s%s", k.Line, key, suggestKey(key, fields)))
			continue
		case seen[key] != 0:
			e.problems = append(e.problems, fmt.Sprintf("line %d: %s is set twice (first on line %d)", k.Line, key, seen[key]))
			continue
		}
		seen[key] = k.Line
		if err := setField(v.Field(idx), val); err != nil {
			e.problems = append(e.problems, fmt.Sprintf("line %d: %s: %v", val.Line, key, err))
		}
	}
	if len(e.problems) > 0 {
		return e
	}
	return nil
}

// configFields maps each config key to its field of Config.
func configFields() map[string]int {
	typ := reflect.TypeFor[Config]()
	m := make(map[string]int, typ.NumField())
	for i := range typ.NumField() {
		m[strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]] = i
	}
	return m
}

var durationType = reflect.TypeFor[time.Duration]()

// setField sets f from the YAML value node n.
func setField(f reflect.Value, n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if f.Kind() == reflect.Slice {
		var items []*yaml.Node
		switch {
		case n.Kind == yaml.SequenceNode:
			items = n.Content
		case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		case n.Kind == yaml.ScalarNode:
			items = []*yaml.Node{n} // one value for a list of one
		default:
			return fmt.Errorf("want a list, like [\"a\", \"b\"]")
		}
		list := make([]string, 0, len(items))
		for _, it := range items {
			if it.Kind != yaml.ScalarNode {
				return fmt.Errorf("want a list of single values")
			}
			list = append(list, it.Value)
		}
		f.Set(reflect.ValueOf(list))
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value, not a list or a mapping")
	}
	if n.Tag == "!!null" {
		f.SetZero()
		return nil
	}
	s := n.Value
	switch {
	case f.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.CanInt():
		i, err := parseWhole(s)
		if err != nil {
			return err
		}
		if f.OverflowInt(int64(i)) {
			return fmt.Errorf("%s is too large", s)
		}
		f.SetInt(int64(i))
	case f.CanFloat():
		x, err := parseNumber(s)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case f.Kind() == reflect.Bool:
		b, err := parseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.String:
		f.SetString(s)
	default:
		// A kind of setting these words don't cover yet: yaml's own decoding, told plainly.
		if err := n.Decode(f.Addr().Interface()); err != nil {
			return fmt.Errorf("%q is not a valid value", s)
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlSyntax words a YAML syntax error like the others: "line 3: ...".
func yamlSyntax(err error) string {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return "line " + m[1] + ": " + m[2]
	}
	return "is not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// flagKeys are the one-letter flags a config file might be given by mistake.
var flagKeys = map[string]string{"c": "concurrency", "o": "out", "i": "input", "q": "quiet", "H": "headers"}

// suggestKey is " (did you mean K?)" for the known key nearest to an unknown one, or "".
func suggestKey(key string, fields map[string]int) string {
	if k, ok := flagKeys[key]; ok {
		return " (did you mean " + k + "?)"
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if best := nearestName(key, keys); best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

// nearestName is the name in names that word most likely misspells, or "": one spelled the same
// but for case, '_', '-' and '.' (a flag's name as a key, a key without its underscores), else the
// first nearest within a typo's distance.
func nearestName(word string, names []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", len(word)/3+1 // a typo, not another word
	for _, n := range names {
		if norm(n) == norm(word) {
			return n
		}
		if d := editDistance(norm(word), norm(n)); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b: insertions, deletions,
// substitutions and swaps of neighbours, each costing one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
