package extract

import "strings"

// parseSrcset returns the URLs of a srcset attribute ("a.jpg 1x, b.jpg 2x, c.jpg 640w"),
// following the candidate tokenizer of the HTML standard loosely: a URL runs to the next
// whitespace, so it may contain commas that are not followed by whitespace ("a.jpg?x=1,2 1x");
// a URL ending in commas is a candidate without descriptors; descriptors run to the next comma
// outside parentheses. Malformed descriptors are skipped, not fatal: a lazy-load attribute with
// one bad candidate still yields the others.
func parseSrcset(s string) []string {
	var urls []string
	i := 0
	for {
		for i < len(s) && (isSpace(s[i]) || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return urls
		}
		start := i
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		u := s[start:i]
		if strings.HasSuffix(u, ",") {
			urls = append(urls, strings.TrimRight(u, ","))
			continue
		}
		urls = append(urls, u)
		depth := 0
	descriptors:
		for ; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				if depth > 0 {
					depth--
				}
			case ',':
				if depth == 0 {
					break descriptors
				}
			}
		}
	}
}

// isSpace reports ASCII whitespace as HTML defines it.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}
