// Command trawl is a concurrent bulk downloader and crawler whose every job survives Ctrl-C,
// kill -9 and reboots: run the same command again and it continues.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// softMemoryLimit is the Go heap's soft limit unless $GOMEMLIMIT sets one: the GC works harder as
// the heap nears it instead of letting it double. trawl's live heap is bounded (batches of at most
// 25,000 URLs, one copy buffer per worker), so this costs no throughput and keeps a big list's
// run (BenchmarkE2EScale) near the limit. It is soft: a run that needs more gets more.
const softMemoryLimit = 128 << 20

// gcPercent is GOGC unless $GOGC sets it: the heap may grow to three times what is live before a
// collection, not twice. A download's live heap is small (a few MiB for 5,000 small files), so at
// Go's default it collects many times a second, and the soft limit above still caps a big run.
const gcPercent = 200

// tuneRuntime sets the collector's goals that $GOMEMLIMIT and $GOGC leave unset.
func tuneRuntime() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

func main() {
	tuneRuntime()
	ctx, cancel := context.WithCancel(context.Background())
	// The first Ctrl-C or SIGTERM stops dispatching and lets in-flight transfers finish; the
	// second exits at once (the queue's leases make that safe too).
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "trawl: interrupted; finishing in-flight transfers (again to quit now)")
		cancel()
		<-sig
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
