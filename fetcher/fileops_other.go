//go:build !linux

package fetcher

import "os"

func openatCreate(int, string) (*os.File, error) { return nil, errSlowPath }

func renameat(int, string, string) error { return errSlowPath }
