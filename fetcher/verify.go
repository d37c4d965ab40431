package fetcher

import "fmt"

// verify is the step between a complete .part and its publication, for a body written as one
// stream (write) and one written in segments (finish) alike: the body's sha256, sum, is compared
// with what the Request knows. A body that is not the one wanted (WantSHA256) is refused; a body
// that is the copy already at the path (HaveSHA256, same length) leaves that copy untouched, its
// inode and mtime as they were, rather than replacing it with the same bytes. Either way the .part
// and its sidecar are removed: nothing refused is ever presented as the file, and a retry
// downloads afresh. With neither, the caller publishes the .part. The .part must be closed.
func (t *transfer) verify(sum string, size int64) (unchanged bool, err *Error) {
	switch {
	case t.req.WantSHA256 != "" && sum != t.req.WantSHA256:
		t.discard()
		return false, t.fail(ClassChecksum, false,
			fmt.Errorf("%w: expected %s, got %s; not published", errChecksum, t.req.WantSHA256, sum))
	case t.req.HaveSHA256 != "" && sum == t.req.HaveSHA256 && t.have && size == t.haveSize:
		t.discard()
		return true, nil
	}
	return false, nil
}
