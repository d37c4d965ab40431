package store

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The flock bbolt takes says that the file is held, not by whom. The holder writes its pid and
// start time next to the file so the ErrLocked message can name it: "is trawl from last night
// still running?" is the first question a cron user has.

func lockInfoPath(path string) string { return path + ".lock" }

// writeLockInfo is called with the flock held. It writes to a temporary file and renames it, so
// a process reading it never sees half a line.
func writeLockInfo(path string) error {
	tmp := lockInfoPath(path) + ".tmp"
	line := fmt.Sprintf("pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, lockInfoPath(path))
}

// readLockInfo returns "pid 1234, since 2026-11-22T01:02:03Z", or "" if the note is missing or
// not in the expected form (then the error message just says the file is in use).
func readLockInfo(path string) string {
	b, err := os.ReadFile(lockInfoPath(path))
	if err != nil || len(b) > 200 {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0] != "pid" || f[2] != "since" {
		return ""
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		return ""
	}
	since, err := time.Parse(time.RFC3339, f[3])
	if err != nil {
		return ""
	}
	return fmt.Sprintf("pid %d, since %s", pid, since.Format(time.RFC3339))
}
