//go:build !linux

package fetcher

import (
	"io/fs"
	"os"
)

func openatCreate(int, string) (*os.File, error) { return nil, errSlowPath }

func renameat(int, string, string) error { return errSlowPath }

func fstatat(int, string) (fs.FileInfo, error) { return nil, errSlowPath }
