//go:build !unix

package fetcher

import (
	"errors"
	"time"
)

// setMtime is not available here; the caller falls back to Chtimes by name.
func setMtime(partFile, time.Time) error { return errors.ErrUnsupported }
