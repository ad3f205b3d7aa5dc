package jetstream

import (
	"errors"
	"testing"
)

// TestLetterIDPerStreamIncarnation: two letters of one message (a retry,
// or the next owner's) have the same Nats-Msg-Id, which the dead-letter
// stream's duplicate window drops; the letter of a message of a stream
// deleted and created anew, whose sequence the old stream's letter had,
// must not: dropped as a duplicate, its failure would vanish.
func TestLetterIDPerStreamIncarnation(t *testing.T) {
	pt, _ := fakePartition(t)
	e, _ := fakeEntry(pt, "r", 5, 1)
	cause := errors.New("bad")
	pt.c.cfg.streamCreated = 1_000
	first := pt.letter(e, ReasonFailed, 1, cause, false).Header.Get(headerMsgID)
	again := pt.letter(e, ReasonFailed, 3, cause, true).Header.Get(headerMsgID)
	if first != again {
		t.Errorf("letters of one message: ids %q and %q, want equal", first, again)
	}
	pt.c.cfg.streamCreated = 2_000 // the stream was deleted and created anew
	if other := pt.letter(e, ReasonFailed, 1, cause, false).Header.Get(headerMsgID); other == first {
		t.Errorf("the letter of sequence 5 of a new stream has the old one's id %q", other)
	}
}
