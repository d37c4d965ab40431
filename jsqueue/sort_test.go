package jsqueue

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// seqMsg is a delivered message of stream sequence seq that counts how often its metadata is read.
type seqMsg struct {
	jetstream.Msg
	seq   uint64
	reads *int
}

func (m seqMsg) Metadata() (*jetstream.MsgMetadata, error) {
	*m.reads++
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq}}, nil
}

// TestSortBySequence: a full pull (16 partitions, each delivering its messages in order) is put in
// stream order reading each message's metadata once. Metadata parses the reply subject; read at
// every comparison of a quadratic sort, it cost a worker's first pull of 4096 messages seconds
// of CPU on the dispatcher's goroutine.
func TestSortBySequence(t *testing.T) {
	const parts, per = 16, 256
	reads := 0
	var msgs []jetstream.Msg
	for p := range parts {
		for i := range per {
			msgs = append(msgs, seqMsg{seq: uint64(i*parts + p + 1), reads: &reads})
		}
	}
	sortBySequence(msgs)
	for i, m := range msgs {
		if got := m.(seqMsg).seq; got != uint64(i+1) {
			t.Fatalf("message %d has sequence %d, want %d", i, got, i+1)
		}
	}
	if reads > len(msgs) {
		t.Fatalf("sorting %d messages read their metadata %d times, want once each", len(msgs), reads)
	}
}
