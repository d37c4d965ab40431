package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Get returns url's record; ok is false if the store does not know url.
func (s *Store) Get(url string) (r Record, ok bool, err error) {
	if url == "" {
		return Record{}, false, nil
	}
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(url))
		if v == nil {
			return nil
		}
		var derr error
		if r, _, derr = decodeRecord(url, v); derr != nil {
			return corrupt(s.path, "record of %q: %v", url, derr)
		}
		ok = true
		return nil
	})
	return r, ok, err
}

// Counts returns the number of records in each state and the bytes of the Done ones. Every
// transaction keeps them current, so this is one read.
func (s *Store) Counts() (Counts, error) {
	var c Counts
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		c, err = readCounts(s.path, tx.Bucket(bucketMeta))
		return err
	})
	return c, err
}

// ForEach calls fn for every record, in URL order, and stops at the first error fn returns,
// returning it. It reads in chunks, each in its own read transaction, and calls fn outside of
// them: fn may call other Store methods (even Commit), and a long walk does not hold a read
// transaction that would stall the writer when the file has to grow. The price is that records
// changed during the walk may be seen in either state.
func (s *Store) ForEach(fn func(Record) error) error {
	const chunk = 512
	var after []byte
	for {
		var recs []Record
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(recs) < chunk; k, v = c.Next() {
				r, _, err := decodeRecord(string(k), v)
				if err != nil {
					return corrupt(s.path, "record of %q: %v", k, err)
				}
				recs = append(recs, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < chunk {
			return nil
		}
		after = []byte(recs[len(recs)-1].URL)
	}
}

// SetMeta stores a small piece of run metadata (run start and end, outcome) under key.
func (s *Store) SetMeta(key, value string) error {
	return s.SetMetas(map[string]string{key: value})
}

// SetMetas stores several values in one transaction (one commit, one fsync).
func (s *Store) SetMetas(kv map[string]string) (err error) {
	defer s.catch(&err)
	for key := range kv {
		if key == "" || len(key) > bolt.MaxKeySize {
			return fmt.Errorf("store: meta key must be 1 to %d bytes", bolt.MaxKeySize)
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRun)
		for key, value := range kv {
			if err := b.Put([]byte(key), []byte(value)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Meta returns the value SetMeta stored under key, or "" if none.
func (s *Store) Meta(key string) (string, error) {
	if key == "" {
		return "", nil
	}
	var v string
	err := s.view(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketRun).Get([]byte(key)))
		return nil
	})
	return v, err
}

// HostCounts returns the counts of every host's records, kept current by every transaction, so
// this reads one small entry per host.
func (s *Store) HostCounts() (map[string]Counts, error) {
	out := make(map[string]Counts)
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHostStat).ForEach(func(k, v []byte) error {
			c, err := decodeCounts(s.path, v)
			if err != nil {
				return err
			}
			out[string(k)] = c
			return nil
		})
	})
	return out, err
}
