// Package integration holds no code. Its tests (package integration_test) are trawl's
// end-to-end tests: they build cmd/trawl once (or use the binary named by $TRAWL_BIN), run it as
// a separate process against HTTPS test servers on 127.0.0.1 (internal/testserver), and check
// what a user would see: exit codes, files on disk, the requests the servers received, and the
// log on stderr.
package integration
