package fetcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Class names what kind of failure an Error is. Callers branch on Retryable and Fatal;
// Class is for reports, logs and tests.
type Class string

// Failure classes.
const (
	ClassHTTP      Class = "http"       // the server answered with a non-success status
	ClassNetwork   Class = "network"    // connection refused, reset, DNS, malformed response
	ClassTimeout   Class = "timeout"    // connect, TLS handshake or response-header timeout
	ClassStall     Class = "stall"      // no body bytes for IdleTimeout
	ClassTLS       Class = "tls"        // handshake or certificate verification failed
	ClassShortBody Class = "short-body" // the body ended before Content-Length bytes
	ClassRedirect  Class = "redirect"   // too many redirects or a redirect to a non-http(s) URL
	ClassLocal     Class = "local"      // writing the output failed (disk, permissions, path)
	ClassCanceled  Class = "canceled"   // the caller's context was canceled
	ClassURL       Class = "url"        // the URL or path is unusable
	ClassRange     Class = "range"      // a resume answer did not fit the .part: restart from zero
	ClassChecksum  Class = "checksum"   // the body's sha256 is not Request.WantSHA256: not published
)

// Error is the only error type Fetch returns. It says what the caller should do: retry
// (and not before RetryAfter), give up on this URL, or stop the whole run (Fatal).
type Error struct {
	URL        string        // redacted: never includes userinfo
	Class      Class         // kind of failure
	Status     int           // HTTP status when Class == ClassHTTP
	Retryable  bool          // worth another attempt
	RetryAfter time.Duration // server's Retry-After (capped at an hour, the one cap on it; garbage ignored), 0 if none
	Fatal      bool          // local condition that dooms the whole run: disk full, output read-only/not writable
	Err        error         // underlying cause
}

func (e *Error) Error() string {
	msg := string(e.Class)
	if e.Class == ClassHTTP && e.Status != 0 {
		msg = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.URL != "" {
		return e.URL + ": " + msg
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ServerBusy reports whether the server said it is overloaded (429 Too Many Requests, 503
// Service Unavailable): its host deserves a pause, whether or not it said for how long.
func (e *Error) ServerBusy() bool {
	return e.Class == ClassHTTP && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable)
}

// Overloaded reports whether the failure suggests the host has more requests from us than it
// can take: the server said so, or a request timed out, stalled or lost its connection.
func (e *Error) Overloaded() bool {
	return e.ServerBusy() || e.Class == ClassTimeout || e.Class == ClassStall || e.Class == ClassNetwork
}

// Sentinel causes, wrapped in *Error. Compare with errors.Is.
var (
	// errStalled: the idle watchdog fired because no body bytes arrived for IdleTimeout.
	errStalled = errors.New("no data received within the idle timeout")
	// errShortBody: the body ended cleanly but before the declared Content-Length.
	errShortBody = errors.New("body shorter than Content-Length")
	// errLongBody: more body bytes than the declared Content-Length.
	errLongBody = errors.New("body longer than Content-Length")
	// errTooManyRedirects: the redirect chain exceeded Options.MaxRedirects.
	errTooManyRedirects = errors.New("too many redirects")
	// errIsDirectory: the output path is an existing directory, which is never clobbered.
	errIsDirectory = errors.New("output path is an existing directory")
	// errChecksum: a complete body whose sha256 is not the one the request wants.
	errChecksum = errors.New("sha256 mismatch")
)

// retryableStatus reports whether an HTTP status is worth another attempt: the server
// says so explicitly (408, 425, 429, 503) or the failure is typically transient at a
// proxy or overloaded origin (500, 502, 504). Every other 4xx/5xx will answer the same.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// httpError builds the error for a non-success response.
func httpError(rawURL string, resp *http.Response, now time.Time) *Error {
	e := &Error{
		URL:       redact(rawURL),
		Class:     ClassHTTP,
		Status:    resp.StatusCode,
		Retryable: retryableStatus(resp.StatusCode),
	}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	// After redirects, the status is the last URL's: name it, as the one that refused.
	if req := resp.Request; req != nil && req.Response != nil && rawURL != "" { // a redirect led here
		e.Err = fmt.Errorf("from %s, where a redirect led", redact(req.URL.String()))
	}
	return e
}

// localError wraps a failure to write the output. Disk full, read-only or permission
// denied will fail every following file too, so they are Fatal: the scheduler stops the
// run instead of burning through the queue marking everything failed.
func localError(rawURL string, err error) *Error {
	fatal := isFatalLocal(err)
	return &Error{URL: redact(rawURL), Class: ClassLocal, Fatal: fatal, Err: err}
}

// tlsError is how the dialer marks a failed handshake, so Classify does not have to
// recognise TLS failures by their messages.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// Classify turns any error into an *Error. An *Error anywhere in the chain is returned as
// is; otherwise the class is decided by the error's type, never by its message.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	e := &Error{Err: err}
	var ue *url.Error
	if errors.As(err, &ue) {
		// The client's url.Error repeats the URL (password masked, username kept); keep
		// only the redacted one in Error.URL.
		e.URL = redact(ue.URL)
		e.Err = ue.Err
	}
	classify(e, e.Err)
	return e
}

func classify(e *Error, err error) {
	var (
		tlsErr  *tlsError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		opErr   *net.OpError
		dnsErr  *net.DNSError
		pathErr *fs.PathError
		linkErr *os.LinkError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		e.Class = ClassCanceled
	case errors.Is(err, errStalled):
		e.Class, e.Retryable = ClassStall, true
	case errors.Is(err, errTooManyRedirects):
		e.Class = ClassRedirect
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &tlsErr):
		// A certificate the system does not trust will not become trusted by retrying.
		e.Class = ClassTLS
		e.Err = tlsReason(err)
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// The server sent a TLS alert (e.g. "certificate required" after a TLS 1.3
		// handshake, which surfaces on the first read, not in the dialer).
		e.Class = ClassTLS
	case errors.Is(err, errShortBody), errors.Is(err, io.ErrUnexpectedEOF):
		e.Class, e.Retryable = ClassShortBody, true
	case errors.As(err, &dnsErr):
		// NXDOMAIN will not resolve on a retry minutes later; a SERVFAIL or timeout might.
		e.Class, e.Retryable = ClassNetwork, !dnsErr.IsNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		e.Class, e.Retryable = ClassTimeout, true
	case errors.As(err, &pathErr), errors.As(err, &linkErr):
		e.Class, e.Fatal = ClassLocal, isFatalLocal(err)
	default:
		// Resets, refused connections, broken pipes, malformed responses: the network
		// or the server misbehaved this time.
		e.Class, e.Retryable = ClassNetwork, true
	}
}

// tlsReason rewrites a verification failure so the message says which check failed.
func tlsReason(err error) error {
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
		rec tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("certificate signed by unknown authority (use --ca-cert to trust it): %w", err)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return fmt.Errorf("certificate expired or not yet valid: %w", err)
	case errors.As(err, &ci):
		return fmt.Errorf("certificate invalid: %w", err)
	case errors.As(err, &he):
		return fmt.Errorf("certificate is not valid for host name %q: %w", he.Host, err)
	case errors.As(err, &rec):
		return fmt.Errorf("server did not answer with TLS: %w", err)
	}
	return fmt.Errorf("handshake failed (protocol version or cipher mismatch, or client certificate refused): %w", err)
}

// isFatalLocal reports whether a local write error will hit every other file as well.
func isFatalLocal(err error) bool {
	for _, errno := range fatalErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// redact removes userinfo from a URL for errors and reports.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
