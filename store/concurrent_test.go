package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse runs workers leasing and committing on their own hosts while another
// goroutine enqueues and readers poll, as the scheduler and the progress bar do. Run with -race.
func TestConcurrentUse(t *testing.T) {
	s := mustOpen(t)
	const hosts, per = 4, 300
	for h := 0; h < hosts; h++ {
		mustEnqueue(t, s.Store, urls(fmt.Sprint("h", h), 0, per))
	}
	var wg sync.WaitGroup
	errs := make(chan error, hosts+2)
	for h := 0; h < hosts; h++ {
		wg.Add(1)
		go func(host string) {
			defer wg.Done()
			for {
				recs, err := s.Lease(host, 32, time.Now())
				if err != nil || len(recs) == 0 {
					errs <- err
					return
				}
				ups := make([]Update, len(recs))
				for i, r := range recs {
					r.State, r.Bytes = Done, 1
					ups[i] = Update{Record: r, Links: urls("links", i, 1)}
				}
				if err := s.Commit(ups); err != nil {
					errs <- err
					return
				}
			}
		}(fmt.Sprint("h", h))
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if _, err := s.Enqueue(urls("extra", i*10, 10)); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := s.PendingHosts(); err != nil {
				errs <- err
				return
			}
			if _, err := s.Counts(); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c := mustCounts(t, s.Store)
	if c.Done != hosts*per || c.Bytes != hosts*per || c.Pending != 32+200 {
		t.Errorf("counts %+v", c)
	}
}

// TestReadersDoNotGrowFile: read transactions running all the while a list is enqueued (the
// dispatcher's scans, the progress line) do not keep a big enqueue from reusing the pages the one
// before it freed. The file ends no bigger than one built with no reader about.
func TestReadersDoNotGrowFile(t *testing.T) {
	build := func(readers bool) int64 {
		dir := t.TempDir()
		s, err := Open(filepath.Join(dir, "state.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		if readers {
			for range 2 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := s.Counts(); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
		}
		for i := 0; i < 40_000; i += 4000 {
			var batch []NewURL
			for h := range 40 {
				batch = append(batch, urls(fmt.Sprintf("h%02d", h), i, 100)...)
			}
			mustEnqueue(t, s, batch)
		}
		close(stop)
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	alone, read := build(false), build(true)
	if read > alone+alone/100 {
		t.Errorf("state file %d bytes with readers about, %d without: want at most 1%% more", read, alone)
	}
	t.Logf("state file %d bytes with readers about, %d without", read, alone)
}
