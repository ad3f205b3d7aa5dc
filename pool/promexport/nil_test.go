package promexport_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoal-go/shoal/backpressure"
	"github.com/shoal-go/shoal/pool"
	"github.com/shoal-go/shoal/pool/promexport"
)

// TestNewRejectsTypedNil: a nil *pool.Pool (or *pool.Batcher) passed as the
// Source, or a nil *backpressure.Breaker passed to WithBreaker, is not a
// nil interface. New must refuse them with a clear error, not hand back a
// Collector every scrape of which panics in Snapshot (the registry turns
// that into a "collector panic recovered: nil pointer dereference" error
// on every Gather).
func TestNewRejectsTypedNil(t *testing.T) {
	var p *pool.Pool[string]
	c, err := promexport.New(p)
	if !errors.Is(err, promexport.ErrNilSource) {
		if c != nil {
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			if _, gerr := reg.Gather(); gerr != nil {
				first, _, _ := strings.Cut(gerr.Error(), "\n")
				t.Errorf("the Collector New returned scrapes with: %s", first)
			}
		}
		t.Fatalf("New((*pool.Pool)(nil)) = %v, want ErrNilSource", err)
	}
	var b *pool.Batcher[string, int]
	if _, err := promexport.New(b); !errors.Is(err, promexport.ErrNilSource) {
		t.Fatalf("New((*pool.Batcher)(nil)) = %v, want ErrNilSource", err)
	}
	var br *backpressure.Breaker
	if _, err := promexport.New(stubSource{}, promexport.WithBreaker(br)); !errors.Is(err, promexport.ErrInvalidOption) {
		t.Fatalf("WithBreaker((*Breaker)(nil)) = %v, want ErrInvalidOption", err)
	}
}
