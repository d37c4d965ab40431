package main

import (
	"errors"
	"fmt"
)

// Exit codes, documented in README and --help.
const (
	exitOK          = 0   // every URL done
	exitFailed      = 1   // some URLs failed permanently, or bad input lines were skipped
	exitUsage       = 2   // bad flags, arguments or config
	exitFatal       = 3   // state file locked or corrupt, output not writable, disk full
	exitTransient   = 4   // transient failures remain, or the work left waits past --max-wait; the next run retries them
	exitInterrupted = 130 // stopped by a signal; run the same command to continue
)

const exitCodesHelp = `Exit codes:
  0    every URL done (or revalidated unchanged)
  1    some URLs failed permanently (404...; see the log or --report), or bad
       lines in the list were skipped
  2    usage or config error, or no usable URL to download
  3    fatal: state file locked or corrupt (or another run holds it), output not
       writable, disk full
  4    transient failures remain (timeouts, 5xx...), or all that is left waits
       longer than --max-wait (Retry-After...); the next run retries them
  130  interrupted (run the same command again to continue)`

// exitError carries an exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, a...)}
}

func fatalErr(format string, a ...any) error {
	return &exitError{exitFatal, fmt.Errorf(format, a...)}
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFatal
}
