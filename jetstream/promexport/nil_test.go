package promexport_test

import (
	"errors"
	"testing"

	"github.com/shoal-go/shoal/jetstream"
	"github.com/shoal-go/shoal/jetstream/promexport"
)

// TestNewRejectsNilConsumer: a nil *jetstream.Consumer is a nil
// source; accepted, every scrape would panic in Consumer.Stats.
func TestNewRejectsNilConsumer(t *testing.T) {
	var c *jetstream.Consumer
	if _, err := promexport.New(c); !errors.Is(err, promexport.ErrNilSource) {
		t.Fatalf("New((*jetstream.Consumer)(nil)): %v; want ErrNilSource", err)
	}
}
