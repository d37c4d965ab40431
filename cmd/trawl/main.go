// Command trawl is a concurrent bulk downloader and crawler whose every job survives Ctrl-C,
// kill -9 and reboots: run the same command again and it continues.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
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
