package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/trawl-dev/trawl/queue"
)

// failureGroups gathers a run's failures by host, error class and status, for a person at a
// terminal: 500 URLs failing on one host for one reason are one line, not 500. (The log file and
// --log-format json keep a line per URL, for scripts.)
type failureGroups struct {
	mu     sync.Mutex
	groups map[failureKey]*failureGroup
}

type failureKey struct {
	host, class string
	status      int
}

type failureGroup struct {
	failureKey
	n       int64
	example string // the first failure's error, without its URL
	url     string // the first failure's URL
}

func newFailureGroups() *failureGroups {
	return &failureGroups{groups: map[failureKey]*failureGroup{}}
}

// add counts a failed record; first is true for the first of its group.
func (g *failureGroups) add(r queue.Record) (grp failureGroup, first bool) {
	k := failureKey{r.Host, r.ErrorClass, r.Status}
	g.mu.Lock()
	defer g.mu.Unlock()
	x := g.groups[k]
	if x == nil {
		x = &failureGroup{failureKey: k, example: failureReason(r), url: redact(r.URL)}
		g.groups[k] = x
		first = true
	}
	x.n++
	return *x, first
}

// lines are the groups, the largest first: "500 URLs on host: reason".
func (g *failureGroups) lines() []string {
	g.mu.Lock()
	all := make([]failureGroup, 0, len(g.groups))
	for _, x := range g.groups {
		all = append(all, *x)
	}
	g.mu.Unlock()
	slices.SortFunc(all, func(a, b failureGroup) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.host, b.host), cmp.Compare(a.class, b.class), cmp.Compare(a.status, b.status))
	})
	out := make([]string, len(all))
	for i, x := range all {
		if x.n == 1 {
			out[i] = x.url + ": " + x.example
			continue
		}
		out[i] = fmt.Sprintf("%s on %s: %s", plural(x.n, "URL"), x.host, x.example)
	}
	return out
}

// maxReasonBytes bounds a failure's reason on a terminal line.
const maxReasonBytes = 200

// failureReason is a failed record's error as a person reads it: without the URL the error starts
// with (the line names it, or the host), and without the library's restatement of the cause after
// trawl's own hint ("... (use --ca-cert to trust it): tls: failed to verify certificate: x509:
// ...").
func failureReason(r queue.Record) string {
	msg := r.LastError
	if strings.HasPrefix(msg, "http") {
		if i := strings.Index(msg, ": "); i > 0 {
			msg = msg[i+2:]
		}
	}
	if i := strings.Index(msg, " (use "); i >= 0 {
		if j := strings.Index(msg[i:], ")"); j >= 0 {
			msg = msg[:i+j+1]
		}
	}
	if msg == "" {
		msg = r.ErrorClass
		if r.Status != 0 {
			msg += " " + strconv.Itoa(r.Status)
		}
	}
	if len(msg) > maxReasonBytes {
		msg = strings.ToValidUTF8(msg[:maxReasonBytes], "") + "..."
	}
	return msg
}
