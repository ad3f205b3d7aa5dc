package jetstream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-go/shoal/shard"
)

// StreamSpec describes a partitioned stream for CreateStream.
type StreamSpec struct {
	// Name is the stream's name (required).
	Name string
	// Subject is the prefix publishers write to: a message for room R is
	// published on "<Subject>.R" (default "rooms"). R is one subject token.
	Subject string
	// Partitions is the number of partitions (required, > 0). The server
	// stores a message of room R on "<Subject>.<p>.R", with p its partition
	// (the server's partition(n, token) hash of R).
	Partitions int
	// Replicas is the stream's replica count (default 1; 3 for a cluster
	// that must survive the loss of one server).
	Replicas int
	// Storage is where the stream keeps its messages (default file).
	Storage natsjs.StorageType
}

// CreateStream creates the stream that spec describes, or updates it to match
// if it exists: messages published on "<Subject>.<room>" are stored on
// "<Subject>.<partition>.<room>" by a subject transform, so publishers need
// not know the partition count. Start reads the partition count and the
// subject prefix back from the stream.
func CreateStream(ctx context.Context, js natsjs.JetStream, spec StreamSpec) (natsjs.Stream, error) {
	switch {
	case ctx == nil:
		return nil, fmt.Errorf("%w: nil context", ErrBadOption)
	case js == nil:
		return nil, fmt.Errorf("%w: nil JetStream", ErrBadOption)
	}
	if !name.MatchString(spec.Name) {
		return nil, fmt.Errorf("%w: stream name %q", ErrNoStream, spec.Name)
	}
	if spec.Partitions <= 0 || spec.Partitions > maxPartitions {
		return nil, fmt.Errorf("%w: %d, want 1..%d", ErrBadPartitions, spec.Partitions, maxPartitions)
	}
	if spec.Subject == "" {
		spec.Subject = "rooms"
	}
	if !subjectRE.MatchString(spec.Subject) {
		return nil, fmt.Errorf("%w: subject prefix %q", ErrBadOption, spec.Subject)
	}
	if spec.Replicas == 0 {
		spec.Replicas = 1
	}
	return js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{
		Name:     spec.Name,
		Subjects: []string{spec.Subject + ".*"},
		SubjectTransform: &natsjs.SubjectTransformConfig{
			Source:      spec.Subject + ".*",
			Destination: fmt.Sprintf("%s.{{partition(%d,1)}}.{{wildcard(1)}}", spec.Subject, spec.Partitions),
		},
		Replicas: spec.Replicas,
		Storage:  spec.Storage,
	})
}

// PartitionSubject is the subject on which a publisher that partitions on its
// own side publishes a message of room to a stream of n partitions with
// prefix subject: "<subject>.<p>.<room>", p = shard.Jump(shard.Hash(room), n).
// Such a stream has no transform; its subjects are "<subject>.*.*", and
// consumers are started with WithSubject and WithPartitions.
func PartitionSubject(subject, room string, n int) string {
	return subject + "." + strconv.Itoa(shard.Jump(shard.Hash(room), n)) + "." + room
}

// partitionRE finds the partition count in a transform's destination.
var partitionRE = regexp.MustCompile(`\{\{\s*partition\(\s*(-?\d+)\s*,`)

// layout reads the subject prefix and partition count from the stream, and
// checks them against the options.
func layout(ctx context.Context, js natsjs.JetStream, cfg *config) (replicas int, err error) {
	if cfg.stream == "" {
		return 0, fmt.Errorf("%w: WithStream is required", ErrNoStream)
	}
	s, err := js.Stream(ctx, cfg.stream)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return 0, fmt.Errorf("%w: %q", ErrNoStream, cfg.stream)
	}
	if err != nil {
		return 0, fmt.Errorf("shoal/jetstream: stream %q: %w", cfg.stream, err)
	}
	sc := s.CachedInfo().Config
	cfg.streamCreated = s.CachedInfo().Created.UnixNano()
	if t := sc.SubjectTransform; t != nil {
		m := partitionRE.FindStringSubmatch(t.Destination)
		if m == nil {
			return 0, fmt.Errorf("%w: stream %q transforms to %q, which has no partition()", ErrBadPartitions, cfg.stream, t.Destination)
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 || n > maxPartitions {
			return 0, fmt.Errorf("%w: stream %q has %s partitions, want 1..%d", ErrBadPartitions, cfg.stream, m[1], maxPartitions)
		}
		if cfg.partitions != 0 && cfg.partitions != n {
			return 0, fmt.Errorf("%w: WithPartitions(%d) but stream %q has %d", ErrBadPartitions, cfg.partitions, cfg.stream, n)
		}
		prefix, ok := strings.CutSuffix(t.Source, ".*")
		if !ok || !subjectRE.MatchString(prefix) {
			return 0, fmt.Errorf("%w: stream %q transforms %q; want \"<prefix>.*\"", ErrBadOption, cfg.stream, t.Source)
		}
		if cfg.subjectSet && cfg.subject != prefix {
			return 0, fmt.Errorf("%w: WithSubject(%q) but stream %q uses %q", ErrBadOption, cfg.subject, cfg.stream, prefix)
		}
		cfg.partitions = n
		cfg.subject = prefix
	} else if cfg.partitions == 0 {
		return 0, fmt.Errorf("%w: stream %q has no partition transform; give WithPartitions", ErrBadPartitions, cfg.stream)
	} else if len(sc.Subjects) > 0 && sc.Mirror == nil && len(sc.Sources) == 0 {
		// The partition consumers filter on "<prefix>.<p>.*": a stream
		// that stores none of those would be consumed by consumers that
		// match nothing (the server accepts such a filter).
		for p := range cfg.partitions {
			f := cfg.subject + "." + strconv.Itoa(p) + ".*"
			if !slices.ContainsFunc(sc.Subjects, func(s string) bool { return covers(s, f) }) {
				return 0, fmt.Errorf("%w: stream %q (subjects %q) does not store %q; give WithSubject", ErrBadOption, cfg.stream, sc.Subjects, f)
			}
		}
	}
	return max(sc.Replicas, 1), nil
}

// covers reports whether the subject pattern s matches every subject that
// the pattern f matches.
func covers(s, f string) bool {
	st, ft := strings.Split(s, "."), strings.Split(f, ".")
	for i, t := range st {
		if t == ">" {
			return i < len(ft)
		}
		if i >= len(ft) || (t != "*" && t != ft[i]) {
			return false
		}
	}
	return len(st) == len(ft)
}
