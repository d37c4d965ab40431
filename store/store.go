package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure Open. The zero value (or nil) is what trawl runs with.
type Options struct {
	// Timeout is how long Open waits for another process to release the file before it returns
	// ErrLocked. Zero means 1s: long enough to ride out a previous run that is just closing,
	// short enough that a cron run overlapping a live one fails at once.
	Timeout time.Duration

	// NoSync skips fsync on every commit, so a crash can lose or corrupt recent work. For tests
	// and benchmarks only.
	NoSync bool

	// ReadOnly opens an existing file for reading only (trawl status): a shared lock, so any
	// number of readers, but none while a run holds the file; leases are left as they are.
	ReadOnly bool

	// Respell, if set, is the normalizer the caller keys records by. The first writable Open
	// given one rekeys every record stored under another spelling of its URL (an older trawl
	// normalized differently), so that the resource is found under the spelling asked for now,
	// and marks the file so that later opens skip the walk. Nil leaves the keys as they are.
	Respell Respeller
}

const defaultTimeout = time.Second

// Store is an open state file. Its methods are safe for concurrent use; bbolt runs one writer at
// a time, so batch changes into few calls.
type Store struct {
	db        *bolt.DB
	path      string
	readOnly  bool
	pageLimit atomic.Int64 // see SetPageLimit
	opened    time.Time    // monotonic origin of dropped
	dropped   atomic.Int64 // time since opened of the last dropMapped, in nanoseconds
	drops     atomic.Int64 // how many times the mapping was given back (for tests)
	readers   sync.RWMutex // held shared by read transactions; see updateDrop
	closeOnce sync.Once
	closeErr  error
}

// Open opens the state file at path, creating it (and its parent directory) if missing, takes an
// exclusive lock on it, and returns every lease left by a dead process to its queue.
//
// A file locked by another process gives ErrLocked after opts.Timeout; a file that is not a
// readable trawl state file gives ErrCorrupt. Both errors are one line naming the file.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := checkTruncated(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, o)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, readOnly: o.ReadOnly, opened: time.Now()}
	if o.ReadOnly {
		if err := s.checkFormat(); err != nil {
			closeQuietly(db)
			return nil, err
		}
		return s, nil
	}
	respell, err := s.init(o.Respell != nil)
	if err != nil {
		closeQuietly(db)
		return nil, err
	}
	if respell {
		if err := s.respell(o.Respell, respellBatch); err != nil {
			closeQuietly(db)
			if ce := (*corruptError)(nil); errors.As(err, &ce) {
				return nil, err
			}
			return nil, fmt.Errorf("state file %s: respelling URLs: %w", path, err)
		}
	}
	if err := writeLockInfo(path); err != nil {
		closeQuietly(db)
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return s, nil
}

// SetPageLimit caps the pages (records neither requisite nor skipped) the store will queue: a new
// page beyond n is recorded Skipped with reason "max-pages", and a new requisite beyond
// RequisitesPerPage×n with "requisite-budget". (The other reasons a record is Skipped are the
// caller's, given as NewURL.Skip or with a committed record: off-scope, off-host-asset, excluded,
// not-included, depth, requisite-depth, too-long, invalid, unmappable, robots.txt.) A
// breadth-first job (BreadthFirst) counts pages level by level, in discovery order, so the limit
// takes the shallowest. Zero means no limit.
func (s *Store) SetPageLimit(n int) { s.pageLimit.Store(int64(n)) }

// Path is the state file's path as given to Open.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. It waits for running transactions. Calling it again
// does nothing (in particular, it does not remove the next holder's note).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Remove the holder note first: once the flock is gone another process may write its own.
		if !s.readOnly {
			_ = os.Remove(lockInfoPath(s.path))
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("state file %s: close: %w", s.path, err)
		}
	})
	return s.closeErr
}

// allocSize is the file's growth step.
const allocSize = 4 << 20

// openBolt opens the bbolt file, turning lock timeouts into ErrLocked and every failure to read
// the file — errors and panics alike — into ErrCorrupt.
func openBolt(path string, o Options) (db *bolt.DB, err error) {
	var file *os.File // captured so a panic inside bolt.Open does not leak the fd and its flock
	bo := &bolt.Options{
		Timeout:  o.Timeout,
		NoSync:   o.NoSync,
		ReadOnly: o.ReadOnly,
		// The array freelist, not the hashmap one: every commit writes the freelist, which the
		// array keeps sorted while the hashmap sorts it anew each time, a large part of a
		// download run's CPU over a big state. The array scans for a run of free pages only
		// when asked for more than one (the freelist page itself, large values); a node's page is
		// taken from its front.
		FreelistType: bolt.FreelistArrayType,
		// The freelist is synced (NoFreelistSync false): without it bbolt rebuilds the freelist
		// at every Open by walking every page of the file, in a goroutine of its own where a
		// damaged page panics beyond any recover and kills the process. Writing it costs a
		// page per commit; commits are batched.
		NoFreelistSync: false,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				// bbolt's memory map still references the file, which keeps the flock alive
				// after Close; release it explicitly so the file is not locked until exit.
				unlockFile(file)
				file.Close()
			}
			db, err = nil, corrupt(path, "%v", r)
		}
	}()
	// A damaged page can make bbolt touch memory past the end of the mapping; with this set the
	// fault is a recoverable panic in this goroutine instead of a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	db, err = bolt.Open(path, 0o600, bo)
	switch {
	case err == nil:
		// bbolt grows the file this much past what it needs: less slack per URL than its
		// default, at the cost of more grows (a truncate and an fsync each).
		db.AllocSize = allocSize
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &lockedError{path: path, holder: readLockInfo(path)}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, corrupt(path, "%v", err)
	case errors.Is(err, os.ErrPermission), errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("state file %s: %w", path, err)
	case errors.Is(err, syscall.EROFS):
		// A healthy file that cannot be opened for writing: a user told "corrupt" might delete it.
		return nil, fmt.Errorf("state file %s is on a read-only file system (trawl status can still read it): %w", path, err)
	}
	// Anything else while reading the file's own structures (short reads, bad page sizes).
	return nil, corrupt(path, "%v", err)
}

// init creates the buckets of a new file, or checks that an existing file is ours and readable,
// then returns leases to their queues. It reports whether the file's records want respelling:
// never for a new file, which is marked respelled when a Respeller is given. Panics (bbolt's
// reaction to damaged pages) become ErrCorrupt.
func (s *Store) init(respeller bool) (respell bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, "%v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	err = s.db.Update(func(tx *bolt.Tx) error {
		empty := true
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			empty = false
			return nil
		}); err != nil {
			return err
		}
		if empty {
			// New file, or one that crashed between bbolt's init and ours.
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			meta := tx.Bucket(bucketMeta)
			if err := meta.Put(keyVersion, []byte(formatVersion)); err != nil {
				return err
			}
			if respeller {
				if err := meta.Put(keyRespelled, []byte("1")); err != nil {
					return err
				}
			}
			return meta.Put(keyCounts, encodeCounts(Counts{}))
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return corrupt(s.path, "a bbolt file, but not trawl's (no %q bucket)", bucketMeta)
		}
		v := meta.Get(keyVersion)
		if !readableFormat(v) {
			return corrupt(s.path, "format version %q, this trawl reads %q", oneLine(string(v)), formatVersion)
		}
		if string(v) != formatVersion {
			if err := meta.Put(keyVersion, []byte(formatVersion)); err != nil {
				return err
			}
		}
		w, err := newWtx(s.path, tx)
		if err != nil {
			return err
		}
		if err := s.recoverLeases(w); err != nil {
			return err
		}
		respell = respeller && meta.Get(keyRespelled) == nil
		return w.flush()
	})
	var ce *corruptError
	if err != nil && !errors.As(err, &ce) {
		err = corrupt(s.path, "%v", err)
	}
	return respell, err
}

// checkFormat checks, read-only, that the file is a trawl state file of this format.
func (s *Store) checkFormat() (err error) {
	defer s.catch(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return corrupt(s.path, "not a trawl state file (no %q bucket)", bucketMeta)
		}
		if v := meta.Get(keyVersion); !readableFormat(v) {
			return corrupt(s.path, "format version %q, this trawl reads %q", oneLine(string(v)), formatVersion)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return corrupt(s.path, "bucket %q missing", name)
			}
		}
		return nil
	})
}

// recoverLeases returns every Leased record to its queue at its old position (same NextAttempt
// and sequence): whoever held the lease died before committing an outcome.
func (s *Store) recoverLeases(w *wtx) error {
	var urls []string
	if err := w.leased.ForEach(func(k, _ []byte) error {
		urls = append(urls, string(k))
		return nil
	}); err != nil {
		return err
	}
	for _, url := range urls {
		r, seq, ok, err := w.get(url)
		if err != nil {
			return err
		}
		if !ok || r.State != Leased {
			return corrupt(s.path, "lease of %q has no leased record", url)
		}
		if err := w.detach(&r, seq); err != nil {
			return err
		}
		r.State = Pending
		if err := w.insert(&r, seq); err != nil {
			return err
		}
	}
	return nil
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// update runs fn in one read-write transaction and writes the counters at its end.
func (s *Store) update(fn func(w *wtx) error) error { return s.updateDrop(fn, false) }

// updateDrop is update, then maybeDrop(big). A big transaction (an enqueue of dropBatch URLs or
// more) begins with no read transaction open. bbolt frees the pages a commit replaced when a
// later write transaction begins, and only if no read transaction open since that commit (or
// from before it) is open then: an enqueue of 25,000 URLs that begins under one cannot reuse the
// pages the one before freed, and grows the file by as much. The dispatcher's scans
// (PendingHosts) run while a list is enqueued, so they would often be open at such a start.
func (s *Store) updateDrop(fn func(w *wtx) error, big bool) (err error) {
	defer s.catch(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	begun := func() {}
	if big {
		// Held from before the transaction begins to its first statement: db.Update keeps
		// bbolt's own rollback on a panic, which Begin and a deferred Rollback would not.
		s.readers.Lock()
		var once sync.Once
		begun = func() { once.Do(s.readers.Unlock) }
		defer begun()
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		begun()
		w, err := newWtx(s.path, tx)
		if err != nil {
			return err
		}
		w.pageLimit = int(s.pageLimit.Load())
		if err := fn(w); err != nil {
			return err
		}
		return w.flush()
	})
	if err == nil {
		s.maybeDrop(big)
	}
	return err
}

// The state file is mapped into memory, and every page a transaction reads stays resident in
// trawl's address space, counted in its RSS. Commits never overwrite a live page: they write new
// versions to pages from the freelist, which had been read (and mapped) as other pages before.
// So without help, the resident part of the mapping grows to the whole file, though a run touches
// a small part of it at a time. maybeDrop gives the mapping back (dropMapped): after a big
// enqueue, which reads a few thousand pages once, and otherwise at most every dropEvery, so that
// the pages a run keeps using (branches, the heads of the queues) are faulted back in about once
// a second, not continually — dropping much more often costs the download rate.
const (
	dropEvery = time.Second
	dropBatch = 1000 // an Enqueue of this many URLs drops the mapping after its commit
)

// maybeDrop calls dropMapped if force is set or dropEvery has passed since the last drop.
func (s *Store) maybeDrop(force bool) {
	now := int64(time.Since(s.opened))
	if force || now-s.dropped.Load() >= int64(dropEvery) {
		s.dropped.Store(now)
		s.dropMapped()
	}
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	defer s.catch(&err)
	// A damaged page can send bbolt's reads past the mapping: make that a panic (caught above)
	// rather than a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	s.readers.RLock()
	defer s.readers.RUnlock()
	return s.db.View(fn)
}

// catch turns a panic into ErrCorrupt. bbolt panics when it meets a damaged page, which Open's
// checks cannot rule out without reading the whole file; the transaction has been rolled back by
// then, and the caller gets a one-line error instead of a crash.
func (s *Store) catch(err *error) {
	if r := recover(); r != nil {
		*err = corrupt(s.path, "%v", r)
	}
}
