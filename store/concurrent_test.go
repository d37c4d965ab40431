package store

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// TestBigEnqueueWaitsForReaders: a big enqueue does not begin while a read transaction is open
// (one that began after the last commit pins the pages that commit freed), so the file ends
// exactly as big as one built with no reader about.
func TestBigEnqueueWaitsForReaders(t *testing.T) {
	batch := func(i int) []NewURL {
		var b []NewURL
		for h := range 40 {
			b = append(b, urls(fmt.Sprintf("h%02d", h), i*100, 100)...)
		}
		return b
	}
	build := func(reader bool) int64 {
		dir := t.TempDir()
		s, err := Open(filepath.Join(dir, "state.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if !reader || i != 3 {
				mustEnqueue(t, s, batch(i))
				continue
			}
			inView, release := make(chan struct{}), make(chan struct{})
			go s.view(func(*bolt.Tx) error { close(inView); <-release; return nil })
			<-inView
			done, errc := make(chan struct{}), make(chan error, 1)
			go func() { _, err := s.Enqueue(batch(i)); errc <- err; close(done) }()
			// Until the enqueue waits for the reader (a writer waiting on readers makes
			// TryRLock fail), it must not get through.
			for s.readers.TryRLock() {
				s.readers.RUnlock()
				select {
				case <-done:
					close(release)
					t.Fatal("a big enqueue began and committed under an open read transaction")
				default:
					runtime.Gosched()
				}
			}
			close(release)
			<-done
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if alone, read := build(false), build(true); read != alone {
		t.Errorf("state file %d bytes with a reader open at an enqueue, %d without", read, alone)
	}
}
