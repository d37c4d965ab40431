package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/store"
)

func newRetryCmd(stdout io.Writer) *cobra.Command {
	var out, state, host string
	var status int
	var shared sharedFlags
	cmd := &cobra.Command{
		Use:   "retry [-o DIR | --state FILE | --queue nats://HOST:PORT --job NAME] [--host H] [--status CODE]",
		Short: "Put failed URLs back in the queue (the next run fetches them)",
		Long: `Put the job's failed URLs back in the queue with a fresh retry budget; the next run of
the job's command fetches them. --host and --status narrow it to one host or one HTTP status.
(A new run of get or crawl retries every failed URL anyway; retry is for choosing which.)

With --queue and --job, the job shared by trawl workers on NATS JetStream: the URLs go back to
its queue, and a worker running (or the next to start) fetches them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter := func(r queue.Record) bool {
				return (host == "" || r.Host == host) && (status == 0 || r.Status == status)
			}
			if isShared, err := shared.given(cmd); err != nil {
				return err
			} else if isShared {
				q, closeConn, err := shared.attach(cmd.Context())
				if err != nil {
					return err
				}
				defer closeConn()
				n, err := q.Requeue(filter)
				if err != nil {
					return fatalErr("--queue %s: %v", redact(shared.url), err)
				}
				fmt.Fprintf(stdout, "%d failed URL(s) queued again\n", n)
				return nil
			}
			path := statePathOf(out, state)
			if _, err := os.Stat(path); err != nil {
				// Never create a job here: a mistyped -o must fail, not leave an empty job behind.
				return usageErr("no trawl job at %s (give -o DIR or --state FILE)", path)
			}
			st, err := store.Open(path, &store.Options{Timeout: time.Second})
			if err != nil {
				return fatalErr("%v", err)
			}
			defer st.Close()
			n, err := st.Requeue(filter)
			if err != nil {
				return fatalErr("%v", err)
			}
			fmt.Fprintf(stdout, "%d failed URL(s) queued again\n", n)
			if err := st.Close(); err != nil {
				return fatalErr("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", ".", "the job's output `DIR`")
	cmd.Flags().StringVar(&state, "state", "", "the job's state `FILE` (default <out>/.trawl/state.db)")
	cmd.Flags().StringVar(&host, "host", "", "only URLs of host `H` (host[:port] as in trawl status)")
	cmd.Flags().IntVar(&status, "status", 0, "only URLs that failed with HTTP status `CODE`")
	shared.add(cmd.Flags())
	return cmd
}
