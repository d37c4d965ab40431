// Package scheduler owns trawl's run loop: it feeds URLs into the queue, leases ready jobs per
// host, asks the rate limiter before each request without ever parking a worker on a busy host,
// dispatches jobs to a pool of fetchers, and records every outcome in batched commits — made
// durable on disk first, so that a URL is never recorded done before its file is.
//
// It knows nothing of bbolt, HTTP details or the terminal: it talks to the small interfaces it
// declares (Queue, Fetcher, Limiter) and reports progress through Stats.
package scheduler
