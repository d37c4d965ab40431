package jsqueue

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trawl-dev/trawl/queue"
)

// dealEvery is how often, at most, a worker reads the live workers to deal the partitions.
const dealEvery = time.Second

// pullWait is how long one pull waits for a partition's messages. Pulls of every partition go
// out together, so a call that finds nothing new costs about this once.
const pullWait = 20 * time.Millisecond

// fill pulls what the partitions this worker is pinned to have delivered, up to the buffer's
// bound, and keeps the messages it holds alive. A message whose record is settled already (a
// duplicate) is acknowledged and dropped; one whose record a crash kept from being created gets
// it now.
//
// The deal is refreshed on every call, a full buffer or not: a worker whose buffer is full must
// still learn that a partition went to another worker, and stop offering its hosts. Its pins are
// kept meanwhile by keepPins, which takes no message.
func (q *Queue) fill() error {
	q.keepAlive(false)
	deal, err := q.partitions()
	if err != nil {
		return err
	}
	// The deal, what is served and what is pulled change together, not between keepPins' steps.
	q.pullMu.Lock()
	defer q.pullMu.Unlock()
	q.mu.Lock()
	lost := q.lostPins
	q.lostPins = nil
	q.mu.Unlock()
	for p := range lost {
		q.pinLost(p) // found by a keepPins that ran while a fill held pullMu
	}
	if q.dealt(deal) {
		_ = q.heartbeat() // status shows the new deal now; a failed beat is retried on the next tick
	}
	mine := q.serving(deal)
	q.giveBackOthers(mine)
	q.unpinOthers(mine)
	q.mu.Lock()
	room := q.opts.Buffer - len(q.held)
	q.mu.Unlock()
	if room <= 0 || len(mine) == 0 {
		return nil
	}
	q.mu.Lock()
	clear(q.settled) // what is settled from here on, a record read by this pull may not show yet
	q.mu.Unlock()
	msgs, errs := q.pullAll(mine, max(1, min(room/len(mine)+1, 256)))
	// Keep stream order: a host's URLs are fetched as they were queued.
	sortBySequence(msgs)
	if err := q.takeAll(msgs); err != nil {
		return err
	}
	if len(errs) > 0 && len(msgs) == 0 {
		return errs[0]
	}
	return nil
}

// pullAll pulls up to batch messages of each partition of mine, together, and returns them with
// the errors that are failures: a lost pin or an engine out of reach is none.
func (q *Queue) pullAll(mine []int, batch int) ([]jetstream.Msg, []error) {
	q.fetchMu.Lock()
	defer q.fetchMu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		msgs []jetstream.Msg
		errs []error
	)
	for _, p := range mine {
		c := q.consumers[p]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A lost pin (it lapsed while this worker pulled nothing, or another worker took the
			// partition) is no failure: the client forgets the pin, and its next pull asks anew.
			// Nor is an engine out of reach: the next pull, once it is back, brings the messages.
			b, err := c.Fetch(batch, jetstream.FetchMaxWait(pullWait), jetstream.FetchPriorityGroup(group))
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				q.pinLost(p)
			}
			if err != nil {
				if !errors.Is(err, jetstream.ErrPinIDMismatch) && !unreachable(err) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				return
			}
			var got []jetstream.Msg
			for m := range b.Messages() {
				got = append(got, m)
			}
			if len(got) > 0 {
				q.mu.Lock()
				if pin := got[0].Headers().Get(pinHeader); pin != "" {
					q.pins[p] = pin
				}
				if at, ok := q.gained[p]; ok && at.IsZero() {
					q.gained[p] = time.Now()
				}
				q.mu.Unlock()
			}
			if errors.Is(b.Error(), jetstream.ErrPinIDMismatch) {
				q.pinLost(p)
			}
			mu.Lock()
			msgs = append(msgs, got...)
			if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !unreachable(err) &&
				!errors.Is(err, jetstream.ErrPinIDMismatch) {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return msgs, errs
}

// keepPins keeps this worker pinned to the partitions it serves (see serving), whether or not it
// has room to pull their messages: the engine resets a pin's timer (PinnedTTL) only when a pull
// carrying the pin arrives, and a worker whose buffer stays full (big files, a cooldown) would
// otherwise lose its partitions to another worker while it still offers and leases their hosts.
// Each pull asks for at most one byte, which no message fits in: the engine takes the pull (and
// renews the pin), then ends it without delivering anything, and claims no pin for it.
//
// A fill under way pulls the partitions at its start, then takes their messages in for a while
// (a round trip each on a loaded engine) holding pullMu. keepPins does not wait for it, which
// would hold up the keep-alive loop and the leases it keeps: it renews the pins alone, and leaves
// a pin found lost, and partitions to give up, to the fill after, which pulls again.
func (q *Queue) keepPins() {
	locked := q.pullMu.TryLock()
	if locked {
		defer q.pullMu.Unlock()
	}
	q.mu.Lock()
	deal := slices.Clone(q.self.Partitions)
	q.mu.Unlock()
	mine := q.serving(deal)
	if locked {
		q.unpinOthers(mine) // those whose hand-over gap ended while the dispatcher called nothing
	}
	q.fetchMu.Lock()
	defer q.fetchMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range mine {
		c := q.consumers[p]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.FetchBytes(1, jetstream.FetchMaxWait(pullWait), jetstream.FetchPriorityGroup(group))
			if err == nil {
				for m := range b.Messages() {
					_ = m.Nak() // not expected (no message fits in one byte); given back if one comes
				}
				err = b.Error()
			}
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				if locked {
					q.pinLost(p)
				} else {
					// The client has forgotten the pin: the fill's next pull carries none, and
					// is never told. The next fill hands the partition's messages back.
					q.mu.Lock()
					if q.lostPins == nil {
						q.lostPins = map[int]bool{}
					}
					q.lostPins[p] = true
					q.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// pinLost hands back the buffered messages (not leased) of partition p, whose pin this worker
// lost: another worker may be pulling p's hosts now, so this one must not offer them.
func (q *Queue) pinLost(p int) {
	q.mu.Lock()
	delete(q.pins, p)
	if slices.Contains(q.self.Partitions, p) {
		q.gained[p] = time.Time{} // another worker may serve it until it comes back
	}
	q.mu.Unlock()
	q.handBack(func(it *item) bool { return it.part != p })
}

// handBack naks, for another worker, the messages buffered here (not leased) that keep refuses,
// and forgets them.
func (q *Queue) handBack(keep func(*item) bool) {
	q.mu.Lock()
	var back []*item
	kept := q.buf[:0]
	for _, it := range q.buf {
		if keep(it) {
			kept = append(kept, it)
			continue
		}
		back = append(back, it)
		delete(q.held, it.rec.URL)
	}
	clear(q.buf[len(kept):])
	q.buf = kept
	q.mu.Unlock()
	for _, it := range back {
		_ = it.msg.Nak()
	}
}

// handGap is how long after a worker settled its last URL of a partition it gives the partition
// up (unpinOthers): a second, or the lease time if shorter, as a pin left to lapse would.
func (q *Queue) handGap() time.Duration { return min(q.opts.AckWait, time.Second) }

// pinHeader is the header of a delivered message that names the pin it was delivered under.
const pinHeader = "Nats-Pin-Id"

// unpinOthers gives up, at once, the pins of the partitions this worker no longer serves (mine
// does not have them: dealt to another worker, with nothing of them leased here), so that their
// new worker takes them now rather than a lease time later, when the pin would lapse. This
// worker pulls them no more: callers hold pullMu, and only partitions in mine are pulled. A
// partition is unpinned only if the engine says the pin is still this worker's: one that lapsed
// meanwhile and went to another worker is left to it.
//
// A partition is given up handGap after this worker last settled a URL of it, not before: its
// hosts see the two workers' requests at least that far apart, as they would across a pin that
// lapsed, so that a host's rate holds over the hand-over too.
func (q *Queue) unpinOthers(mine []int) {
	q.mu.Lock()
	gone := map[int]string{}
	for p, pin := range q.pins {
		if !slices.Contains(mine, p) && time.Since(q.lastSettle[p]) >= q.handGap() {
			gone[p] = pin
			delete(q.pins, p)
		}
	}
	q.mu.Unlock()
	for p, pin := range gone {
		q.unpin(p, pin)
	}
}

// unpin unpins partition p if pin is its current pin. One attempt: a pin not given up lapses
// PinnedTTL after this worker's last pull of it.
func (q *Queue) unpin(p int, pin string) {
	_ = q.once(func(ctx context.Context) error {
		info, err := q.consumers[p].Info(ctx)
		if err != nil {
			return err
		}
		for _, g := range info.PriorityGroups {
			if g.Group == group && g.PinnedClientID == pin {
				return q.stream.UnpinConsumer(ctx, info.Name, group)
			}
		}
		return nil
	})
}

// heartbeat tells the other workers this one is alive, and `trawl status` what it serves: its
// entry in the workers bucket lapses AckWait after the last beat.
func (q *Queue) heartbeat() error {
	q.mu.Lock()
	w := q.self
	w.Held = 0
	for _, it := range q.held {
		if it.leased || it.retrying {
			w.Held++ // a message only buffered, not yet leased, is not the worker's work yet
		}
	}
	b, err := json.Marshal(w)
	q.mu.Unlock()
	if err != nil {
		return err
	}
	// One attempt, never waiting out an outage: the keep-alive loop makes it, and must go on
	// keeping leases alive; a missed beat is made on the next tick.
	if err := q.once(func(ctx context.Context) error {
		_, err := q.workers.Put(ctx, q.id, b)
		return err
	}); err != nil {
		return fmt.Errorf("jsqueue: heartbeat: %w", err)
	}
	q.mu.Lock()
	if up := q.link.lastUp(); q.beatBack.Before(up) {
		q.beatBack = time.Now()
	}
	q.mu.Unlock()
	return nil
}

// dealt records the partitions this worker now serves, and reports whether they changed.
func (q *Queue) dealt(mine []int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if slices.Equal(q.self.Partitions, mine) {
		return false
	}
	// A partition newly dealt here may come from another worker: its hosts are said handed over
	// (PendingHosts) from the first delivery of it here.
	for p := range q.consumers {
		switch here, had := slices.Contains(mine, p), slices.Contains(q.self.Partitions, p); {
		case here && !had:
			q.gained[p] = time.Time{}
		case !here:
			delete(q.gained, p)
		}
	}
	q.self.Partitions = slices.Clone(mine)
	clear(q.coolRead) // hosts may have come from a worker that gave them a cooldown
	return true
}

// partitions are the partitions this worker pulls: the live workers, in the order of their IDs,
// deal the partitions out in turn, so that every worker serves its share and each partition (and
// so each host) has one worker. When a worker joins or dies the deal changes; a partition's pin
// moves to its new worker once the old one stops pulling it (PinnedTTL).
//
// The live workers are read at most every dealEvery (a full buffer has the dispatcher ask for
// the deal on every call): a stale deal is safe, as the pins follow this worker's deal, not the
// others' (keepPins), and only delays a hand-over.
func (q *Queue) partitions() ([]int, error) {
	q.mu.Lock()
	if !q.dealAt.IsZero() && time.Since(q.dealAt) < min(q.keepAliveEvery(), dealEvery) {
		defer q.mu.Unlock()
		return slices.Clone(q.self.Partitions), nil
	}
	q.mu.Unlock()
	ids := []string{q.id}
	err := q.do(true, func(ctx context.Context) error {
		ids = ids[:1]
		keys, err := q.workers.Keys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		for _, k := range keys {
			if k != q.id {
				ids = append(ids, k)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: workers: %w", err)
	}
	q.mu.Lock()
	if up := q.link.lastUp(); !up.IsZero() && (q.beatBack.Before(up) || time.Since(q.beatBack) < q.opts.AckWait) {
		// Back from an outage: the other workers' heartbeats may have lapsed meanwhile, and the
		// engine, if it restarted, forgot every pin. Keep the deal as it was until the others
		// have had a lease time, from this worker's first heartbeat the engine took, to beat again
		// (each beats as soon as it is back), or the first worker back would deal itself every
		// partition, and pull hosts another still holds leases of.
		defer q.mu.Unlock()
		return slices.Clone(q.self.Partitions), nil
	}
	q.mu.Unlock()
	slices.Sort(ids)
	me := slices.Index(ids, q.id)
	var mine []int
	for p := range q.consumers {
		if p%len(ids) == me {
			mine = append(mine, p)
		}
	}
	q.mu.Lock()
	q.dealAt = time.Now()
	q.mu.Unlock()
	return mine, nil
}

// serving is the partitions this worker pulls: those dealt to it, and those it was dealt before
// and still holds leases of. A host is served by one worker at a time: a partition dealt to
// another worker stays pinned here (it is pulled, so the pin does not lapse) until the run has
// settled every URL of it that it leased — they go out at the host's pace — and only then moves.
// Meanwhile nothing more of it is leased here (see dealtHere).
func (q *Queue) serving(deal []int) []int {
	mine := slices.Clone(deal)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range q.held {
		if it.leased && !slices.Contains(mine, it.part) {
			mine = append(mine, it.part)
		}
	}
	slices.Sort(mine)
	return mine
}

// dealtHere reports whether it belongs to a partition dealt to this worker: only those are
// offered and leased. Callers hold q.mu.
func (q *Queue) dealtHere(it *item) bool { return slices.Contains(q.self.Partitions, it.part) }

// giveBackOthers hands back, for their new worker, the messages buffered here (not leased) of
// partitions this worker no longer pulls: a host is served by one worker at a time.
func (q *Queue) giveBackOthers(mine []int) {
	q.handBack(func(it *item) bool { return slices.Contains(mine, it.part) })
}

// sortBySequence puts msgs in stream order. A message's sequence is read once: Metadata parses
// its reply subject, too dear for every comparison.
func sortBySequence(msgs []jetstream.Msg) {
	type keyed struct {
		seq uint64
		m   jetstream.Msg
	}
	ks := make([]keyed, len(msgs))
	for i, m := range msgs {
		ks[i].m = m
		if md, err := m.Metadata(); err == nil {
			ks[i].seq = md.Sequence.Stream
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return cmp.Compare(a.seq, b.seq) })
	for i := range ks {
		msgs[i] = ks[i].m
	}
}

// takeAll buffers the delivered messages msgs, in their order, or drops those that are
// duplicates (take). Their records are read together, first.
func (q *Queue) takeAll(msgs []jetstream.Msg) error {
	works := make([]work, len(msgs))
	urls := make([]string, 0, len(msgs))
	for i, m := range msgs {
		if json.Unmarshal(m.Data(), &works[i]) != nil {
			works[i] = work{}
		}
		if works[i].URL != "" {
			urls = append(urls, works[i].URL)
		}
	}
	reads := q.getRecords(urls)
	made := map[string]read{} // records take made, of the URLs that had none
	j := 0
	for i, m := range msgs {
		var err error
		if works[i].URL == "" {
			err = m.Term() // not ours to read: never redeliver it
		} else {
			err = q.take(m, works[i], reads[j], made)
			j++
		}
		if err != nil {
			for _, m := range msgs[i+1:] {
				_ = m.Nak()
			}
			return err
		}
	}
	return nil
}

// take buffers one delivered message, the work w, whose record was read as rd; or drops it when
// it is a duplicate. A record a crash kept from being created is made, and noted in made.
func (q *Queue) take(m jetstream.Msg, w work, rd read, made map[string]read) error {
	r, rev, ok, err := rd.r, rd.rev, rd.ok, rd.err
	if err != nil {
		_ = m.Nak()
		return err
	}
	if !ok {
		if c, dup := made[w.URL]; dup {
			r, rev, ok = c.r, c.rev, true // made for an earlier copy of this message
		}
	}
	if !ok {
		if q.testBeforeMake != nil {
			q.testBeforeMake(w.URL)
		}
		if r, rev, err = q.makeRecord(w); err != nil {
			_ = m.Nak()
			return err
		}
		made[w.URL] = read{r: r, rev: rev, ok: true}
	}
	if r.State != queue.Pending && w.Rev != 0 && rev == w.Rev {
		// Taken back to the queue by a requeue that has not rewritten the record yet (or never
		// will: it crashed): work, as the requeue will write it.
		r.State, r.Attempts, r.NextAttempt, r.WantSHA256 = queue.Pending, 0, time.Time{}, w.Want
	}
	if r.State == queue.Pending && q.hosts != nil {
		if err := q.learnCooldown(r.Host); err != nil {
			_ = m.Nak()
			return err
		}
	}
	if q.testAfterRead != nil {
		q.testAfterRead(r.URL)
	}
	q.mu.Lock()
	old, dup := q.held[r.URL]
	if !dup && w.Rev == 0 && q.settled[r.URL] {
		dup = true // read before this worker wrote its outcome (see Queue.settled)
	}
	if dup && r.State == queue.Pending && old != nil && sameMessage(old.msg, m) {
		// The engine redelivered a message this worker still holds: its lease lapsed (a keep-alive
		// came late). It is the same work, not a duplicate. Acknowledging it would take it out of
		// the stream while the worker still has it, and a retry or a release would then have
		// nothing to hand back: the URL would never be fetched again.
		old.msg, old.touched = m, time.Now()
		q.mu.Unlock()
		return nil
	}
	if !dup && r.State == queue.Pending {
		it := &item{rec: r, rev: rev, msg: m, part: q.partitionOf(r.Host), touched: time.Now()}
		q.held[r.URL] = it
		q.buf = append(q.buf, it)
	}
	q.mu.Unlock()
	if dup || r.State != queue.Pending {
		return m.Ack()
	}
	return nil
}

// makeRecord creates the record, pending, of the work w, whose URL had none when its message was
// taken (a crash came between the publish and the record's creation, or the enqueue that
// published it has not created it yet), and returns it with its revision. It is created only if
// there is still none: a record written since the read (by that enqueue, or by another worker
// that took a copy of the message, fetched the URL and settled it) is read again and returned
// instead. Written over, a settled record would be pending again: its URL fetched a second time
// and counted twice, or, its last message acknowledged meanwhile, never done.
func (q *Queue) makeRecord(w work) (queue.Record, uint64, error) {
	r := queue.Record{URL: w.URL, Host: w.Host, Path: w.Path, State: queue.Pending, Depth: w.Depth,
		Requisite: w.Requisite, Auth: w.Auth, WantSHA256: w.Want}
	b, err := encodeRecord(r)
	if err != nil {
		return queue.Record{}, 0, err
	}
	var rev uint64
	err = q.do(true, func(ctx context.Context) error {
		var err error
		rev, err = q.records.Create(ctx, key(r.URL), b)
		return err
	})
	if err == nil {
		return r, rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return queue.Record{}, 0, fmt.Errorf("jsqueue: create %.100q: %w", r.URL, err)
	}
	// Made meanwhile, or by this Create's first attempt if its answer was lost (do made it again).
	stored, rev, ok, err := q.getRecordRev(r.URL)
	switch {
	case err != nil:
		return queue.Record{}, 0, err
	case !ok:
		return queue.Record{}, 0, fmt.Errorf("jsqueue: create %.100q: the record exists, but cannot be read", r.URL)
	}
	return stored, rev, nil
}

// sameMessage reports whether a and b are deliveries of one stream message.
func sameMessage(a, b jetstream.Msg) bool {
	ma, errA := a.Metadata()
	mb, errB := b.Metadata()
	return errA == nil && errB == nil && ma.Sequence.Stream == mb.Sequence.Stream
}

// keepAliveEvery is how often the messages held are kept alive: often enough that none goes
// AckWait without it, whatever the timer's slack.
func (q *Queue) keepAliveEvery() time.Duration { return q.opts.AckWait / 4 }

// keepAliveLoop keeps the leases alive until Close, whatever the caller does: a dispatcher held
// up (behind a slow commit, between two runs, in a run's last downloads) calls nothing for a
// while, and a lease must not lapse then, or the engine hands its URL to a second worker.
//
// The heartbeats have a loop of their own: keepAlive and keepPins make round trips (and keepPins
// waits for a round of pulls under way, fetchMu), and a worker whose beats lapse drops out of
// the others' deal while it still serves its partitions.
func (q *Queue) keepAliveLoop() {
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		tick := time.NewTicker(q.keepAliveEvery())
		defer tick.Stop()
		for {
			select {
			case <-q.closing:
				return
			case <-tick.C:
				_ = q.heartbeat() // a missed beat is retried on the next tick, well within AckWait
			}
		}
	}()
	defer func() {
		<-beats
		close(q.loopDone)
	}()
	tick := time.NewTicker(q.keepAliveEvery())
	defer tick.Stop()
	for {
		select {
		case <-q.closing:
			return
		case <-q.link.reconnected:
			q.rejoin()
		case <-tick.C:
			q.keepAlive(false)
			q.keepPins()
		}
	}
}

// rejoin is what a worker does as soon as its connection is back after an outage, before the
// leases it holds lapse, if they have not yet: it beats (once the engine answers: JetStream may
// still be starting) so that the others count it in the deal, keeps every message it holds alive
// and its partitions pinned.
func (q *Queue) rejoin() {
	for giveUp := time.Now().Add(q.opts.AckWait); q.heartbeat() != nil && time.Now().Before(giveUp); {
		select {
		case <-q.closing:
			return
		case <-time.After(retryPause):
		}
	}
	q.keepAlive(true)
	q.keepPins()
}

// keepAlive tells the engine that the messages held for a while (all of them, with all) are
// still being worked on. A message is counted as kept alive only once its keep-alive has gone out
// over a live connection: one written while the connection is down may be lost with it.
func (q *Queue) keepAlive(all bool) {
	_, up := q.link.current()
	select {
	case <-up:
	default:
		return // sent once the connection is back (reconnected)
	}
	now := time.Now()
	q.mu.Lock()
	var due []*item
	var msgs []jetstream.Msg
	for _, it := range q.held {
		if all || now.Sub(it.touched) >= q.keepAliveEvery() {
			due = append(due, it)
			msgs = append(msgs, it.msg) // read under q.mu: take may replace it
		}
	}
	q.mu.Unlock()
	for i, m := range msgs {
		if m.InProgress() != nil {
			continue
		}
		q.mu.Lock()
		if due[i].msg == m {
			due[i].touched = now
		}
		q.mu.Unlock()
	}
}

// PendingHosts pulls what is new and lists the hosts with buffered work, and when each is due.
func (q *Queue) PendingHosts() ([]queue.HostQueue, error) {
	if err := q.fill(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	idx := map[string]int{}
	var out []queue.HostQueue
	for _, it := range q.buf {
		if !q.dealtHere(it) {
			continue
		}
		i, ok := idx[it.rec.Host]
		if !ok {
			i = len(out)
			idx[it.rec.Host] = i
			out = append(out, queue.HostQueue{Host: it.rec.Host, Next: it.rec.NextAttempt})
		}
		out[i].Pending++
		if it.rec.NextAttempt.Before(out[i].Next) {
			out[i].Next = it.rec.NextAttempt
		}
	}
	// A host of a partition gained here was served by another worker until it came.
	for i := range out {
		out[i].HandedAt = q.gained[q.partitionOf(out[i].Host)]
	}
	// A host in a cooldown is due when it ends, whoever gave it.
	now := time.Now()
	for i := range out {
		if until, ok := q.coolingUntil(out[i].Host, now); ok && until.After(out[i].Next) {
			out[i].Next = until
		}
	}
	return out, nil
}

// leaseMax bounds the records of a host one LeaseEach hands out. A run takes more of a host only
// once it has sent what it took, so this bounds the URLs of a host taken and waiting for their
// turn under the host's rate, not how many are in flight. Those are what a worker must send
// before a partition dealt to another worker can move (see serving): few, so that a worker that
// joins gets its share of the hosts soon, rather than after a hoard taken by the first worker has
// gone out at the host's pace. A lease costs no round trip to the engine, so small ones are cheap.
const leaseMax = 16

// LeaseEach hands out up to n (at most leaseMax) buffered records of each host that are due at
// now, in the order they were queued; it pulls first when the buffer holds nothing for a host
// asked for.
func (q *Queue) LeaseEach(hosts []string, n int, now time.Time) ([][]queue.Record, error) {
	n = min(n, leaseMax)
	q.mu.Lock()
	missing := false
	for _, h := range hosts {
		missing = missing || !q.buffers(h)
	}
	q.mu.Unlock()
	if missing {
		if err := q.fill(); err != nil {
			return nil, err
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([][]queue.Record, len(hosts))
	want := map[string]int{}
	for i, h := range hosts {
		want[h] = i
	}
	keep := q.buf[:0]
	for _, it := range q.buf {
		i, asked := want[it.rec.Host]
		_, cooling := q.coolingUntil(it.rec.Host, now)
		if asked && len(out[i]) < n && !it.rec.NextAttempt.After(now) && q.dealtHere(it) && !cooling {
			it.leased, it.retrying = true, false
			it.rec.State = queue.Leased
			out[i] = append(out[i], it.rec)
			continue
		}
		keep = append(keep, it)
	}
	clear(q.buf[len(keep):])
	q.buf = keep
	return out, nil
}

// buffers reports whether the buffer holds work of host to lease. Callers hold q.mu.
func (q *Queue) buffers(host string) bool {
	for _, it := range q.buf {
		if it.rec.Host == host && q.dealtHere(it) {
			return true
		}
	}
	return false
}

// Outstanding counts the job's messages not yet acknowledged by any worker: queued, leased,
// held for a retry, or handed back to the engine with a delay. When all of them are so delayed,
// next is when the first is due; otherwise it is zero (some may be due now, or in a worker's hands).
func (q *Queue) Outstanding() (n int, next time.Time, err error) {
	var info *jetstream.StreamInfo
	err = q.do(true, func(ctx context.Context) error {
		var err error
		info, err = q.stream.Info(ctx)
		return err
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("jsqueue: stream info: %w", err)
	}
	n = int(info.State.Msgs)
	if n == 0 || q.later == nil {
		return n, time.Time{}, nil
	}
	deferred, first, err := q.deferredUntil(time.Now())
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("jsqueue: deferred URLs: %w", err)
	}
	if deferred < n {
		return n, time.Time{}, nil
	}
	return n, first, nil
}
