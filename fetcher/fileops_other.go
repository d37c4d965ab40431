//go:build !linux

package fetcher

import (
	"io/fs"
)

func openatCreate(int, string) (partFile, error) { return nil, errSlowPath }

func renameat(int, string, string) error { return errSlowPath }

func fstatat(int, string) (fs.FileInfo, error) { return nil, errSlowPath }

func preallocate(partFile, int64) bool { return false }

func freeSpace(partFile) (int64, bool) { return 0, false }

func trimPart(partFile, int64) {}

func punchHole(partFile, int64, int64) {}
