package main

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSetFieldKinds: a setting of a kind Config does not use yet is decoded too, its mistakes told
// in words, never a panic.
func TestSetFieldKinds(t *testing.T) {
	var v struct {
		Small int8
		Big   int64
		Ratio float32
		Count uint
	}
	rv := reflect.ValueOf(&v).Elem()
	for _, tc := range []struct {
		field, value, err string
	}{
		{"Small", "100", ""},
		{"Small", "300", "300 is too large"},
		{"Big", "5000000000", ""},
		{"Ratio", "0.25", ""},
		{"Count", "7", ""},
		{"Count", "-1", `"-1" is not a valid value`},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tc.value), &n); err != nil {
			t.Fatal(err)
		}
		err := setField(rv.FieldByName(tc.field), n.Content[0])
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %s: %v, want %q", tc.field, tc.value, err, tc.err)
		}
	}
	if v.Small != 100 || v.Big != 5000000000 || v.Ratio != 0.25 || v.Count != 7 {
		t.Errorf("decoded %+v", v)
	}
}
