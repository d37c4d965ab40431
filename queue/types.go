// Package queue holds the job types every queue backend speaks — a URL's Record, a NewURL to
// enqueue, an Update settling a lease, Counts — and the contract a backend meets (Backend), so
// that the scheduler and the CLI name no backend, and a second backend (another machine's, a
// distributed engine's) implements the same interface and passes the same conformance suite
// (queuetest).
package queue

import "time"

// State is where a URL stands in the job.
type State uint8

const (
	// Pending: queued, to be fetched once NextAttempt has passed.
	Pending State = iota + 1
	// Leased: handed to a worker by the process holding the store. Leases found at Open
	// belong to a dead process and go back to Pending.
	Leased
	// Done: the file is complete and durable on disk.
	Done
	// Failed: failed permanently (or ran out of retries).
	Failed
	// Skipped: known but not to be fetched (off scope or excluded, deeper than --depth or a
	// chain of requisites allows, over --max-pages or the requisite budget, robots.txt);
	// LastError says why. Recording it keeps it from being offered again.
	Skipped
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Leased:
		return "leased"
	case Done:
		return "done"
	case Failed:
		return "failed"
	case Skipped:
		return "skipped"
	}
	return "unknown"
}

// Record is everything the store knows about one URL.
type Record struct {
	URL         string
	Host        string // queue key: host[:port] as the scheduler schedules it
	Path        string // output path relative to the output dir, slash-separated
	Named       bool   // Path was given by a list line or named by the server (Renamer): later fetches keep it
	State       State
	Attempts    int       // fetch attempts made so far
	NextAttempt time.Time // earliest time a Pending record may be leased
	Status      int       // last HTTP status, 0 if none
	Bytes       int64     // size of the complete file
	SHA256      string    // hex sha256 of the complete file
	// WantSHA256 is the sha256 (lowercase hex) the file must have, as the list or a sums file gave
	// it ("" = any): a body with another is not published. Enqueue sets it (NewURL.SetWant); Commit
	// keeps the stored one, since the list's word may have changed while the URL was leased.
	WantSHA256   string
	ETag         string
	LastModified string
	ContentType  string
	LastError    string // last error message, "" when none
	ErrorClass   string // fetcher's error class of LastError
	Transient    bool   // Failed only because its retries ran out on a transient error
	Requisite    bool   // a page requisite (image, stylesheet...) in a crawl: fetched, not followed
	Auth         bool   // the URL was given with userinfo, which the run holds in memory only
	Depth        int    // a page's crawl depth (0 for list and seed URLs); a requisite's: see RequisiteLevel
	Updated      time.Time
	// Lastmod is a sitemap's word on when the URL last changed (the latest instant its <lastmod>
	// can mean), and Listed when a sitemap last said so; zero when none has. A refresh run that
	// reads sitemaps takes that word rather than revalidating every URL (see the crawl's
	// --sitemaps).
	Lastmod time.Time `json:",omitzero"`
	Listed  time.Time `json:",omitzero"`
}

// RequisiteLevel is a requisite's place in its chain of requisites: 1 for what a page embeds, one
// more for each stylesheet in between (what a level-1 stylesheet imports or url()s is level 2); 0
// for a record that is not a requisite. A crawl stops chains at a fixed level.
//
// A requisite has no crawl depth of its own, so its Depth holds the level, negated
// (RequisiteDepth). The sign tells these records from those written before levels existed, which
// held the depth of the requisite's page plus one (never negative) and say nothing of the chain:
// they count as level 1, so a stylesheet an older trawl queued still gets its fonts and images,
// and a chain it was following is still cut off a few levels on.
func (r *Record) RequisiteLevel() int { return RequisiteLevelOf(r.Requisite, r.Depth) }

// RequisiteDepth is the Depth of a requisite at chain level level (see Record.RequisiteLevel).
func RequisiteDepth(level int) int { return -level }

// RequisiteLevelOf is Record.RequisiteLevel for a record's Requisite and Depth fields.
func RequisiteLevelOf(requisite bool, depth int) int {
	switch {
	case !requisite:
		return 0
	case depth < 0:
		return -depth
	}
	return 1
}

// ApplyWant gives r the expected sha256 want, which is not its WantSHA256. A record judged against
// the old one goes back to the queue, due now with a fresh retry budget: a Failed one (it may have
// failed for the old sum), and a Done one whose file has another sha256. It reports whether r was
// queued again.
func (r *Record) ApplyWant(want string) (requeued bool) {
	r.WantSHA256 = want
	if r.State == Failed || r.State == Done && want != "" && r.SHA256 != want {
		r.State, r.Attempts, r.NextAttempt, r.Transient = Pending, 0, time.Time{}, false
		return true
	}
	return false
}

// NewURL is a URL offered to Enqueue.
type NewURL struct {
	URL       string
	Host      string
	Path      string // proposed output path; the store may adjust it to resolve a collision
	Named     bool   // Path was given (a list line's second field), not derived from the URL: see Record.Named
	Depth     int    // as Record.Depth: a requisite's is RequisiteDepth(its chain level)
	Requisite bool   // a page requisite: fetched but not followed; not counted as a page
	Auth      bool   // given with userinfo (kept out of the store): needs the run's credentials
	Skip      string // non-empty: record it as Skipped for this reason instead of queueing it
	// Lastmod and Listed, when Lastmod is set, are a sitemap's word on the URL (Record.Lastmod):
	// Enqueue writes them on its record, new or known, but for a skipped one; a Leased one may
	// keep the word it had, as the outcome committed over it is newer news. Nothing else about a
	// known record changes.
	Lastmod, Listed time.Time
	// WantSHA256 is Record.WantSHA256 of a new URL: lowercase hex, or "" for none. With SetWant
	// (a URL of a list or the command line, whose word is the latest), a known URL takes it too, by
	// Record.ApplyWant; without (a crawl's links), a known URL keeps its own.
	WantSHA256 string
	SetWant    bool
}

// Update is the outcome of one leased job. Record.State says where it goes: Done, Failed, or
// Pending (retry at Record.NextAttempt). Links are enqueued in the same transaction (crawl).
type Update struct {
	Record Record
	Links  []NewURL
}

// HostQueue summarizes one host that has pending work.
type HostQueue struct {
	Host    string
	Pending int       // pending records of this host
	Next    time.Time // earliest NextAttempt among them
	// HandedAt, if not zero, is when the host came to this worker from another of a shared job,
	// which may have sent it a request until then: no request of it goes out here until the
	// host's full interval after HandedAt.
	HandedAt time.Time
}

// Counts are the number of records in each state. The bbolt store keeps them up to date in every
// transaction, so reading them costs O(1); the JetStream backend still counts its bucket.
type Counts struct {
	Pending, Leased, Done, Failed int
	Skipped                       int
	Pages                         int   // records that are not requisites and not skipped (crawl pages)
	Bytes                         int64 // sum of Bytes over Done records
}

// Add counts one more record, r.
func (c *Counts) Add(r Record) {
	switch r.State {
	case Pending:
		c.Pending++
	case Leased:
		c.Leased++
	case Done:
		c.Done++
		c.Bytes += r.Bytes
	case Failed:
		c.Failed++
	case Skipped:
		c.Skipped++
	}
	if !r.Requisite && r.State != Skipped {
		c.Pages++
	}
}

// Total is the number of URLs to fetch: every record but the skipped ones.
func (c Counts) Total() int { return c.Pending + c.Leased + c.Done + c.Failed }

// Queue is what a run asks of a backend: per-host queues of URLs, leased rather than popped, and
// settled by Commit. A lease that is never settled (the process died) returns to its queue.
type Queue interface {
	// Enqueue adds URLs not seen before (a known URL is left as it is, bar the upgrades a crawl
	// needs, a sitemap's word: NewURL.Lastmod, and a new WantSHA256 with SetWant: see
	// Record.ApplyWant), and reports how many were added.
	Enqueue(urls []NewURL) (added int, err error)
	// PendingHosts lists the hosts with pending records and when each is next due.
	PendingHosts() ([]HostQueue, error)
	// LeaseEach leases up to n due records of each host, in the order they were queued.
	LeaseEach(hosts []string, n int, now time.Time) ([][]Record, error)
	// Commit settles leases: Done, Failed, Skipped, or Pending again (a retry at NextAttempt, or a
	// release keeping its place). A page's Links are enqueued in the same transaction. Applying
	// the same updates twice leaves the job as applying them once. The stored WantSHA256 is kept:
	// an update that carries another (Enqueue changed it while the URL was leased) is settled by
	// Record.ApplyWant with the stored one.
	Commit(updates []Update) error
	// Counts are the job's records by state. The scheduler reads them after commits that queue
	// links, so a backend should answer without reading every record.
	Counts() (Counts, error)
}

// Backend is a job's whole store: its Queue, and what the CLI asks of a job between runs.
type Backend interface {
	Queue
	Get(url string) (r Record, ok bool, err error)
	ForEach(fn func(Record) error) error
	HostCounts() (map[string]Counts, error)
	// Requeue makes Failed records that match filter (nil: all) Pending again with a fresh
	// retry budget; Revalidate does so for Done ones, which are then fetched conditionally.
	Requeue(filter func(Record) bool) (int, error)
	Revalidate(filter func(Record) bool) (int, error)
	// Meta and SetMetas keep small named values with the job (run metadata, robots.txt cache).
	Meta(key string) (string, error)
	SetMeta(key, value string) error
	SetMetas(kv map[string]string) error
	// SetPageLimit caps the pages (records neither requisite nor skipped) the job will queue.
	SetPageLimit(n int)
	Close() error
}

// Renamer is implemented by a backend that lets the server's answer to a URL's first download
// name its file (Content-Disposition, a redirect that only adds a slash): the name is decided at
// the response's headers, before the body is written, and must be in the job's state by then, so
// that a run that dies mid-body resumes the same .part at the same path.
type Renamer interface {
	// Rename gives the leased record of url the output path proposed, reserved as Enqueue reserves
	// a path (so it may come back with a collision suffix), marks it Named, and releases the path
	// it had. It returns the path to write to. A record already Named keeps its path, which is
	// returned.
	Rename(url, proposed string) (path string, err error)
}

// Shared is implemented by a backend whose job other workers serve too.
type Shared interface {
	// Outstanding counts the job's work not yet settled anywhere — leased by any worker, or
	// waiting for a retry — so that a worker with nothing left of its own waits for the rest
	// instead of ending its run; when all of it waits for a retry in the backend, next is when
	// the first is due (zero otherwise), so that the worker need not wait past its MaxWait.
	Outstanding() (n int, next time.Time, err error)
	// Cooldown tells the backend that host asked to be left alone until until (Retry-After, 429,
	// 503): the worker that serves the host next is told, and holds its URLs back until then
	// (PendingHosts gives the host as due then). It must not wait for the backend.
	Cooldown(host string, until time.Time)
}
