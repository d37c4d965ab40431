package main

import (
	"reflect"
	"testing"
)

// TestListMemory: what the state remembers of a list queued whole reads back for the same
// signature only; a value without the bad lines themselves (an older trawl's "sig count") is not
// taken, so the list is read again once and its bad lines can be listed.
func TestListMemory(t *testing.T) {
	m := listMemory{bad: 3, listed: []badInput{{"urls.txt", 2, "not a URL: no scheme"}, {"urls.txt", 9, `unsupported scheme "ftp" (only http and https)`}}}
	v := encodeListMemory("10:42", m)
	for _, tc := range []struct {
		name, value, sig string
		ok               bool
		want             listMemory
	}{
		{"same list", v, "10:42", true, m},
		{"list changed", v, "11:42", false, listMemory{}},
		{"no bad lines", "10:42 0 null", "10:42", true, listMemory{}},
		{"older trawl, no bad lines", "10:42 0", "10:42", true, listMemory{}},
		{"older trawl, bad lines", "10:42 2", "10:42", false, listMemory{}},
		{"garbled", "10:42 x", "10:42", false, listMemory{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeListMemory(tc.value, tc.sig)
			if ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("decodeListMemory(%q, %q) = %+v, %v; want %+v, %v", tc.value, tc.sig, got, ok, tc.want, tc.ok)
			}
		})
	}
}
