package jetstream

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Reason says why a message became a dead letter; it is the value of its
// HeaderReason header.
type Reason string

// The reasons a message can become a dead letter.
const (
	// ReasonFailed: the handler returned an error on every attempt.
	ReasonFailed Reason = "failed"
	// ReasonPermanent: the handler returned an error wrapped with
	// pool.Permanent; it was not retried.
	ReasonPermanent Reason = "permanent"
	// ReasonPanicked: the handler panicked; panics are not retried.
	ReasonPanicked Reason = "panicked"
	// ReasonMaxDeliveries: the message was delivered more often than
	// WithMaxDeliveries allows; it did not run again.
	ReasonMaxDeliveries Reason = "max-deliveries"
)

// Headers of a dead letter. Its data and the original headers are kept,
// except those the JetStream server acts on (named Nats-…, such as
// Nats-Expected-Stream or Nats-TTL): published again on the dead-letter
// subject they would make the server refuse or expire the letter.
const (
	HeaderReason     = "Shoal-Reason"     // a Reason
	HeaderAttempts   = "Shoal-Attempts"   // handler calls in the last delivery
	HeaderDeliveries = "Shoal-Deliveries" // deliveries of the message
	HeaderError      = "Shoal-Error"      // the last error's text
	HeaderStream     = "Shoal-Stream"     // the stream the message came from
	HeaderSeq        = "Shoal-Stream-Seq" // its sequence there
	HeaderSubject    = "Shoal-Subject"    // its subject there
	HeaderRoom       = "Shoal-Room"       // its room
	HeaderPartition  = "Shoal-Partition"  // its partition
	HeaderFailedAt   = "Shoal-Failed-At"  // RFC 3339 time of the failure
	// HeaderDataOmitted is set on a letter that was too large for the
	// server with the message's data and headers: they are left out (the
	// message is in the stream at HeaderSeq, while the stream keeps it),
	// and it holds the data's size in bytes.
	HeaderDataOmitted = "Shoal-Data-Omitted"
	// "<stream>-<created>-<seq>", created the stream's creation time
	// (UnixNano): the dead-letter stream's duplicate window drops a second
	// copy of one message's letter, and only that (a stream deleted and
	// created anew numbers its messages from 1 again).
	headerMsgID = nats.MsgIdHdr
)

// deadLetter publishes e to the dead-letter subject, waiting for a stream to
// store it (retrying, the room held back, until one does or the partition is
// fenced; Stats.LetterErrors counts the failed tries), then terminates e so that it is never delivered again. A letter
// too large for the server (its max_payload, or the dead-letter stream's
// largest message) goes without the message's data and headers, with
// HeaderDataOmitted: with them it would be refused on every try.
//
// Like an acknowledgement, a letter is sent only before the lease's end:
// each try checks live() first (past the end it waits for the control
// loop's verdict) and ends at the lease's end, so that the publication's
// own resends (nats.go retries a request nobody answered) stop there too.
// Past the end the message is the next owner's, which may handle it: a
// letter published then would record as failed a message that succeeded.
// A try whose reply was lost may still have been stored: the next try's
// copy, or the next owner's, has the same Nats-Msg-Id, which the
// dead-letter stream's duplicate window drops.
func (pt *partition) deadLetter(e *entry, reason Reason, attempts int, cause error) {
	c := pt.c
	slim := false
	dl := pt.letter(e, reason, attempts, cause, slim)
	wait := 10 * time.Millisecond
	for {
		if !pt.live() {
			return // unacknowledged: the next owner tries again
		}
		end := pt.validUntil()
		ctx, cancel := context.WithTimeout(pt.ctx, min(c.cfg.leaseTTL/4, end-c.now()))
		_, err := c.js.PublishMsg(ctx, dl)
		cancel()
		if err == nil {
			break
		}
		c.st.letterErrors.Add(1)
		if tooLarge(err) && !slim {
			slim = true
			dl = pt.letter(e, reason, attempts, cause, slim)
			continue
		}
		if !pt.backoff(&wait) {
			return // unacknowledged: the next owner tries again
		}
	}
	msg, ok := pt.settle(e)
	if !ok {
		return
	}
	if err := msg.TermWithReason(string(reason)); err != nil {
		pt.ackFailed(e)
		return
	}
	c.st.deadLetters.Add(1)
	if d := c.cfg.dedup; d != nil {
		if err := d.Record(pt.ctx, e.m.Room, e.m.Seq); err != nil {
			c.st.dedupErrors.Add(1) // terminated all the same: it is not redelivered
		}
	}
}

// letter is the dead letter of e; slim leaves out its data and headers (and
// cuts the error's text to 1 KiB), for a letter that is too large.
func (pt *partition) letter(e *entry, reason Reason, attempts int, cause error, slim bool) *nats.Msg {
	c := pt.c
	dl := nats.NewMsg(c.cfg.dlqSubject + "." + e.m.Room)
	text := cause.Error()
	if slim {
		dl.Header.Set(HeaderDataOmitted, strconv.Itoa(len(e.m.Data)))
		if len(text) > 1024 {
			text = text[:1024]
		}
	} else {
		dl.Data = e.m.Data
		for k, vs := range e.m.Header {
			if serverHeader(k) {
				continue
			}
			dl.Header[k] = append([]string(nil), vs...)
		}
	}
	dl.Header.Set(HeaderReason, string(reason))
	dl.Header.Set(HeaderAttempts, strconv.Itoa(attempts))
	dl.Header.Set(HeaderDeliveries, strconv.FormatUint(e.m.Deliveries, 10))
	dl.Header.Set(HeaderError, text)
	dl.Header.Set(HeaderStream, c.cfg.stream)
	dl.Header.Set(HeaderSeq, strconv.FormatUint(e.m.Seq, 10))
	dl.Header.Set(HeaderSubject, e.m.Subject)
	dl.Header.Set(HeaderRoom, e.m.Room)
	dl.Header.Set(HeaderPartition, strconv.Itoa(pt.p))
	dl.Header.Set(HeaderFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	dl.Header.Set(headerMsgID, c.cfg.stream+"-"+strconv.FormatInt(c.cfg.streamCreated, 10)+"-"+strconv.FormatUint(e.m.Seq, 10))
	return dl
}

// tooLarge reports whether a publication failed for its size: past the
// server's max_payload, or the storing stream's largest message.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, natsjs.ErrStreamMessageExceedsMaximum)
}

// serverHeader reports whether k is a header the JetStream server acts on
// when a message is published (Nats-Expected-Stream, Nats-Msg-Id, Nats-TTL,
// Nats-Rollup, …): a dead letter leaves them out. Header names are matched
// without regard to case.
func serverHeader(k string) bool {
	return len(k) >= 5 && strings.EqualFold(k[:5], "nats-")
}
