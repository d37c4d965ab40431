// Package fetcher turns one URL into one file.
//
// It owns everything between a URL and bytes on disk: the HTTP client and its tuned
// transport, TLS (extra roots, client certificates), proxies, the cookie jar (and the
// cookies.txt files it is loaded from and saved to), request headers and .netrc logins,
// redirect policy,
// conditional requests (ETag / Last-Modified) and Range resume of a .part file, streaming
// the body to disk while hashing it, publishing the file atomically by rename, the pure
// URL → path mapping, and classifying every failure by what the caller should do about it
// (retry? when? is the whole run doomed?).
//
// It does not queue, retry, or pace requests per host: the scheduler does, using the
// *Error this package returns. Durability is batched: Fetch never fsyncs, Flush makes a
// whole batch durable with one syscall.
package fetcher

// Version is trawl's version, sent in the default User-Agent.
const Version = "0.1.0"
