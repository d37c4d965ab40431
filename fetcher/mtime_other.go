//go:build !unix

package fetcher

import (
	"errors"
	"os"
	"time"
)

// setMtime is not available here; the caller falls back to Chtimes by name.
func setMtime(*os.File, time.Time) error { return errors.ErrUnsupported }
