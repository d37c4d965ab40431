package jsqueue

import (
	"errors"
	"fmt"
	"strings"
)

// MaxJobName is the longest job name: the names the engine is given for a job (its stream, its
// buckets' streams, its consumers) add up to 17 characters to it and must stay within 255.
const MaxJobName = 200

// CheckJob checks a job's name: 1 to MaxJobName letters, digits, '-' and '_' (a '.' or a space
// would end up in NATS subjects and names, where they mean something else).
func CheckJob(name string) error {
	switch {
	case name == "":
		return errors.New("a job needs a name")
	case strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "":
		return fmt.Errorf("job name %.80q: want letters, digits, '-' and '_'", name)
	case len(name) > MaxJobName:
		return fmt.Errorf("job name of %d characters: at most %d", len(name), MaxJobName)
	}
	return nil
}
