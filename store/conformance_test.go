package store

import (
	"testing"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/queue/queuetest"
)

var (
	_ queue.Backend = (*Store)(nil)
	_ queue.Renamer = (*Store)(nil)
)

// TestConformance runs the queue backends' conformance suite against the bbolt store. A crash is
// the file left as a killed process leaves it: its leases still recorded, opened again.
func TestConformance(t *testing.T) { runConformance(t, nil) }

// runConformance runs the suite on stores that setup, if not nil, prepares.
func runConformance(t *testing.T, setup func(*Store)) {
	queuetest.Run(t, queuetest.Harness{
		Open: func(t *testing.T) queue.Backend {
			s, err := Open(t.TempDir()+"/state.db", &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if setup != nil {
				setup(s)
			}
			return s
		},
		Crash: func(t *testing.T, b queue.Backend) queue.Backend {
			path := b.(*Store).Path()
			// Closing without settling leaves them recorded, as a kill -9 does; Open returns them.
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}
