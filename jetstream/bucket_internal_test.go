package jetstream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// namedKV is a bucket that only has a name.
type namedKV struct{ natsjs.KeyValue }

func (namedKV) Bucket() string { return "CHAT_shoal_leases" }

// bucketJS answers a bucket lookup with not found until back, then with
// the bucket.
type bucketJS struct {
	natsjs.JetStream
	back time.Time
}

func (js *bucketJS) KeyValue(context.Context, string) (natsjs.KeyValue, error) {
	if time.Now().Before(js.back) {
		return nil, natsjs.ErrBucketNotFound
	}
	return namedKV{}, nil
}

// TestCheckBucketAsksTwice: a bucket found missing once, and there again
// a quarter TTL later (an answer of the moment), leaves the consumer
// running; one missing at both questions stops it with ErrBucketDeleted.
func TestCheckBucketAsksTwice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		missing time.Duration
		stop    bool
	}{
		{"missing for a moment", time.Second / 10, false},
		{"missing", time.Hour, true},
	} {
		synctest.Test(t, func(t *testing.T) {
			c := testPartition(t, 4*time.Second).c
			c.js = &bucketJS{back: time.Now().Add(tc.missing)}
			c.checkBucket(namedKV{})
			c.checkBucket(namedKV{}) // one question at a time: no second goroutine
			c.wg.Wait()
			cause := context.Cause(c.ctx)
			if stopped := cause != nil; stopped != tc.stop {
				t.Errorf("%s: the consumer's cause %v, want stopped %v", tc.name, cause, tc.stop)
			}
			if tc.stop && !errors.Is(cause, ErrBucketDeleted) {
				t.Errorf("%s: the consumer's cause %v, want ErrBucketDeleted", tc.name, cause)
			}
		})
	}
}
