package jetstream_test

import (
	"testing"
	"time"

	"github.com/shoal-go/shoal/jetstream"
)

// TestReviewKillCountsLost: Stats.Lost counts the leases "dropped when the
// consumer stopped without Stop"; a node killed while holding every
// partition counts each of them lost.
func TestReviewKillCountsLost(t *testing.T) {
	s := startServer(t, "s1", nil, 0)
	_, js := connect(t, s.ClientURL())
	const parts = 4
	createStream(t, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts})
	ck := newChecker(t)
	n := startNode(t, s.ClientURL(), "n1", ck.handle)
	eventually(t, 10*time.Second, "partitions held", func() bool { return len(n.c.Stats().Partitions) == parts })
	n.kill()
	st := n.c.Stats()
	if st.Acquired != parts || st.Released != 0 || st.Lost != parts {
		t.Errorf("acquired %d, released %d, lost %d; want %d, 0, %d", st.Acquired, st.Released, st.Lost, parts, parts)
	}
}
