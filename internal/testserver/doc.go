// Package testserver is an HTTPS test server for trawl's tests, in the style of grab's
// grabtest: one server, behaviour set by functional options globally or per path
// (content, validators, Range handling, faults, status sequences, redirects), and a log
// of every request it saw.
//
// It depends only on the standard library so any test package (fetcher, scheduler,
// integration_test) can use it. Servers listen on 127.0.0.1 only.
package testserver
