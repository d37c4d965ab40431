package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trawl-dev/trawl/fetcher"
)

var stopProfile = func() {}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "trawl",
		Short: "Concurrent bulk downloader and crawler that never loses work",
		Long: `trawl downloads URL lists and crawls sites concurrently, with per-host politeness and
retries. Its queue and every URL's state live in a state file, so an interrupted job (Ctrl-C,
kill -9, a reboot) continues where it stopped when the same command is run again.

` + exitCodesHelp,
		Version:       fetcher.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if ive, ok := errors.AsType[*pflag.InvalidValueError](err); ok {
			err = flagValueError(ive)
		}
		if ne, ok := errors.AsType[*pflag.NotExistError](err); ok && ne.GetSpecifiedShortnames() == "" {
			if hint := suggestFlag(c, ne.GetSpecifiedName()); hint != "" {
				return usageErr("%v (%s)", err, hint)
			}
		}
		return usageErr("%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newGetCmd(stdin, stderr), newCrawlCmd(stderr), newStatusCmd(stdout), newListCmd(stdout), newRetryCmd(stdout))
	// Profiling for developers; hidden from --help.
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE`")
	root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return usageErr("%v", err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return pprof.StartCPUProfile(f)
	}
	defer func() { stopProfile() }()

	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitFatal {
		// cobra's own errors (unknown command, bad arguments) are usage errors.
		if _, ok := err.(*exitError); !ok {
			code = exitUsage
		}
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(stderr, "trawl:", msg)
	}
	return code
}

// suggestFlag is what an unknown long flag name most likely meant: "did you mean --F?" for a
// flag of c it misspells, "trawl crawl has it; ..." for a flag only another command has; "" when
// none is near.
func suggestFlag(c *cobra.Command, name string) string {
	var others []*cobra.Command
	if c.HasParent() {
		for _, o := range c.Parent().Commands() {
			if o != c {
				others = append(others, o)
			}
		}
	}
	for _, o := range others {
		if o.Flags().Lookup(name) != nil {
			return fmt.Sprintf("%s has it; see %s --help", o.CommandPath(), c.CommandPath())
		}
	}
	if best := nearestName(name, flagNames(c)); best != "" {
		return "did you mean --" + best + "?"
	}
	for _, o := range others {
		if best := nearestName(name, flagNames(o)); best != "" {
			return fmt.Sprintf("%s has --%s; see %s --help", o.CommandPath(), best, c.CommandPath())
		}
	}
	return ""
}

// flagNames are the names of c's flags that --help shows.
func flagNames(c *cobra.Command) []string {
	var names []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	return names
}
