package promexport_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/jetstream/promexport"
	"github.com/shoal-go/shoal/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stub is a Source with fixed figures.
type stub struct{ s jetstream.Stats }

func (s stub) Stats() jetstream.Stats { return s.s }

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := promexport.New(nil); !errors.Is(err, promexport.ErrNilSource) {
		t.Fatalf("New(nil): %v", err)
	}
	for _, o := range []promexport.Option{
		nil,
		promexport.WithConstLabels(prometheus.Labels{"partition": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"event": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"9lives": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"__name__": "x"}),
		promexport.WithConstLabels(prometheus.Labels{"stream-name": "x"}),
	} {
		if _, err := promexport.New(stub{}, o); !errors.Is(err, promexport.ErrInvalidOption) {
			t.Errorf("bad option: %v, want ErrInvalidOption", err)
		}
	}
}

// TestCollectorValues checks every series against a fixed Stats.
func TestCollectorValues(t *testing.T) {
	src := stub{jetstream.Stats{
		Member:  "n1",
		Members: []string{"n1", "n2", "n3"},
		Partitions: []jetstream.PartitionStats{
			{Partition: 3, Epoch: 7, Held: 12, Lag: 40},
			{Partition: 11, Epoch: 9, Held: 0, Lag: 0, Releasing: true},
		},
		Acquired: 5, Released: 2, Lost: 1,
		Delivered: 1000, Redelivered: 30, Handled: 990, Acked: 985, Duplicates: 4,
		Retries: 6, DeadLetters: 2, Refusals: 8, AckErrors: 1, Resyncs: 3, DedupErrors: 2, LetterErrors: 4, LeaseErrors: 5, Recreated: 1, RequestErrors: 9,
	}}
	c, err := promexport.New(src, promexport.WithConstLabels(prometheus.Labels{"stream": "CHAT"}))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	const want = `
# HELP shoal_jetstream_ack_errors_total Acknowledgements or terminations that could not be sent; those messages are redelivered.
# TYPE shoal_jetstream_ack_errors_total counter
shoal_jetstream_ack_errors_total{stream="CHAT"} 1
# HELP shoal_jetstream_consumers_recreated_total Partition consumers that the server no longer had (deleted by an operator) and that this node created anew after the partition's acknowledged floor.
# TYPE shoal_jetstream_consumers_recreated_total counter
shoal_jetstream_consumers_recreated_total{stream="CHAT"} 1
# HELP shoal_jetstream_dead_letter_errors_total Publications of dead letters that failed (no stream stores the subject, or none answered in time); each is tried again while its room waits.
# TYPE shoal_jetstream_dead_letter_errors_total counter
shoal_jetstream_dead_letter_errors_total{stream="CHAT"} 4
# HELP shoal_jetstream_dead_letters_total Messages published to the dead-letter subject and terminated.
# TYPE shoal_jetstream_dead_letters_total counter
shoal_jetstream_dead_letters_total{stream="CHAT"} 2
# HELP shoal_jetstream_dedup_errors_total Dedup calls that failed: a LastApplied asked again while its room waits, or a Record whose message is left unacknowledged.
# TYPE shoal_jetstream_dedup_errors_total counter
shoal_jetstream_dedup_errors_total{stream="CHAT"} 2
# HELP shoal_jetstream_handler_retries_total Handler calls after a failed one.
# TYPE shoal_jetstream_handler_retries_total counter
shoal_jetstream_handler_retries_total{stream="CHAT"} 6
# HELP shoal_jetstream_handoffs_total Partition hand-offs seen from this node: leases acquired, released gracefully, or lost (taken, run out, or dropped at a kill).
# TYPE shoal_jetstream_handoffs_total counter
shoal_jetstream_handoffs_total{event="acquired",stream="CHAT"} 5
shoal_jetstream_handoffs_total{event="lost",stream="CHAT"} 1
shoal_jetstream_handoffs_total{event="released",stream="CHAT"} 2
# HELP shoal_jetstream_lease_errors_total Writes of this node's member key and leases (renewals, claims) that failed other than by another node's write: timed out, unreachable, the bucket full or gone.
# TYPE shoal_jetstream_lease_errors_total counter
shoal_jetstream_lease_errors_total{stream="CHAT"} 5
# HELP shoal_jetstream_members Live members of the cluster as this node sees them, itself included.
# TYPE shoal_jetstream_members gauge
shoal_jetstream_members{stream="CHAT"} 3
# HELP shoal_jetstream_messages_total Messages by event: delivered (received), redelivered (received again), handled (handler succeeded), acked, duplicate (dropped by the Dedup).
# TYPE shoal_jetstream_messages_total counter
shoal_jetstream_messages_total{event="acked",stream="CHAT"} 985
shoal_jetstream_messages_total{event="delivered",stream="CHAT"} 1000
shoal_jetstream_messages_total{event="duplicate",stream="CHAT"} 4
shoal_jetstream_messages_total{event="handled",stream="CHAT"} 990
shoal_jetstream_messages_total{event="redelivered",stream="CHAT"} 30
# HELP shoal_jetstream_partition_held Messages of a held partition that this node holds unacknowledged: waiting for the pool, queued or running.
# TYPE shoal_jetstream_partition_held gauge
shoal_jetstream_partition_held{partition="11",stream="CHAT"} 0
shoal_jetstream_partition_held{partition="3",stream="CHAT"} 12
# HELP shoal_jetstream_partition_lag Messages of a held partition not yet delivered, as of the last message received.
# TYPE shoal_jetstream_partition_lag gauge
shoal_jetstream_partition_lag{partition="11",stream="CHAT"} 0
shoal_jetstream_partition_lag{partition="3",stream="CHAT"} 40
# HELP shoal_jetstream_partitions_owned Partitions whose lease this node holds.
# TYPE shoal_jetstream_partitions_owned gauge
shoal_jetstream_partitions_owned{stream="CHAT"} 2
# HELP shoal_jetstream_pool_refusals_total Refusals of the local pool that held pulling back.
# TYPE shoal_jetstream_pool_refusals_total counter
shoal_jetstream_pool_refusals_total{stream="CHAT"} 8
# HELP shoal_jetstream_request_errors_total Requests about a held partition's consumer or stream that failed and are tried again: pull requests, and lookups, creations and state reads that timed out or found no server to answer.
# TYPE shoal_jetstream_request_errors_total counter
shoal_jetstream_request_errors_total{stream="CHAT"} 9
# HELP shoal_jetstream_resyncs_total Recoveries after a delivery went elsewhere (a gap in a partition consumer's delivery sequence), each a pause of one ack wait.
# TYPE shoal_jetstream_resyncs_total counter
shoal_jetstream_resyncs_total{stream="CHAT"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 24 {
		t.Errorf("%d series (%v), want 24", n, err)
	}
}

// TestScrapeConsumer runs a real Consumer on an in-process JetStream server,
// handles messages, and scrapes its collector over HTTP as Prometheus
// would: the partitions it owns, the messages handled and acknowledged,
// and one lag series per partition.
func TestScrapeConsumer(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const parts, msgs = 4, 200
	if _, err := jetstream.CreateStream(ctx, js, jetstream.StreamSpec{Name: "CHAT", Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	p, err := pool.New[string]()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(ctx) })
	c, err := jetstream.Start(ctx, js, p, func(context.Context, *jetstream.Msg) error { return nil },
		jetstream.WithStream("CHAT"), jetstream.WithMember("n1"), jetstream.WithLeaseTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(ctx) })
	for i := range msgs {
		if _, err := js.Publish(ctx, "rooms.r"+strconv.Itoa(i%20), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := promexport.New(c)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pc)
	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer web.Close()

	var page string
	scrape := func() string {
		resp, err := http.Get(web.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape: %d %v", resp.StatusCode, err)
		}
		return string(b)
	}
	want := []string{
		"shoal_jetstream_partitions_owned " + strconv.Itoa(parts),
		`shoal_jetstream_messages_total{event="acked"} ` + strconv.Itoa(msgs),
		`shoal_jetstream_messages_total{event="handled"} ` + strconv.Itoa(msgs),
		`shoal_jetstream_handoffs_total{event="acquired"} ` + strconv.Itoa(parts),
		"shoal_jetstream_members 1",
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		page = scrape()
		missing := ""
		for _, w := range want {
			if !strings.Contains(page, w+"\n") {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the scrape lacks %q:\n%s", missing, page)
		}
		<-tick.C
	}
	for part := range parts {
		if !strings.Contains(page, `shoal_jetstream_partition_lag{partition="`+strconv.Itoa(part)+`"} 0`) {
			t.Errorf("no zero lag for partition %d:\n%s", part, page)
		}
	}
}

// TestConstLabelsAddUp: WithConstLabels given twice puts the labels of both
// on every metric, as its doc says; the later value of a name given twice
// wins.
func TestConstLabelsAddUp(t *testing.T) {
	c, err := promexport.New(stub{},
		promexport.WithConstLabels(prometheus.Labels{"a": "1", "b": "old"}),
		promexport.WithConstLabels(prometheus.Labels{"b": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	n := 0
	for d := range ch {
		n++
		if s := d.String(); !strings.Contains(s, `a="1"`) || !strings.Contains(s, `b="2"`) {
			t.Errorf("metric without both labels: %s", s)
		}
	}
	if n == 0 {
		t.Fatal("no metrics described")
	}
}
