package backpressure

import (
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSmoke(t *testing.T) {
	b, err := NewBreaker(WithBudget(1 << 40))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Admit(); err != nil {
		t.Fatalf("Admit = %v, want nil", err)
	}
	if s := b.State(); s != Normal {
		t.Fatalf("State = %v, want Normal", s)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Admit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Admit after Close = %v, want ErrClosed", err)
	}
}
