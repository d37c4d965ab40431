package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/scheduler"
)

func newGetCmd(stdin io.Reader, stderr io.Writer) *cobra.Command {
	cfg := defaultConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "get [flags] [URL...]",
		Short: "Download the URLs given as arguments or listed in a file",
		Long: `Download URLs given as arguments or listed with -i (one per line; blank lines and
# comments are skipped; a tab-separated second field names the file's path under --out, a third
the file's sha256 as sha256:HEX). A file whose sha256 is not the one its line or --checksums
gives is not kept: the URL fails (exit 1).

Running the same command again continues the job: finished URLs are not fetched again, partial
files resume, failed ones are retried.

` + exitCodesHelp,
		Example: `  trawl get -i urls.txt -o images/
  trawl get -c 32 --per-host 8 https://example.org/a.jpg https://example.org/b.jpg
  cat urls.txt | trawl get -i - -o out/ --rate 2 --limit-rate 10M
  trawl get -i urls.txt -o data/ --checksums SHA256SUMS`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configFile != "" {
				if err := loadConfigFile(configFile, &cfg, cmd.Flags()); err != nil {
					return usageErr("%v", err)
				}
			}
			if err := cfg.validate(); err != nil {
				return usageErr("%v", err)
			}
			if cfg.Input == "" && len(args) == 0 {
				return usageErr("nothing to download: give URLs as arguments or a list with -i FILE (see trawl get --help)")
			}
			// The input is checked before the state is touched: nothing usable is a usage error.
			layout, _ := fetcher.ParseLayout(cfg.Layout) // validated already
			usable, badArgs := checkArgs(args, layout)
			var sums *checksumsInput
			if cfg.Checksums != "" {
				if cfg.Checksums == "-" && cfg.Input == "-" {
					return usageErr("--checksums - and -i - cannot both read standard input")
				}
				var err error
				if sums, err = openChecksums(cfg.Checksums, stdin); err != nil {
					return err
				}
			}
			var list *listInput
			if cfg.Input != "" {
				var err error
				if list, err = openList(cmd.Context(), cfg.Input, stdin, layout, usable > 0); err != nil {
					return err
				}
				defer list.close()
				list.withChecksums(sums)
			} else if usable == 0 {
				return usageErr("nothing to download: no usable URL among the arguments:\n%s", showBad(badArgs, int64(len(badArgs))))
			}
			return runJob(cmd.Context(), "get", &cfg, stderr, func(j *job) scheduler.Feed {
				return j.listFeed(args, list, sums)
			}, nil, nil)
		},
	}
	addFlags(cmd.Flags(), &cfg, &configFile)
	return cmd
}
