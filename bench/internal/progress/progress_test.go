package progress

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 4)
	start := b.start
	b.now = func() time.Time { return start.Add(90 * time.Second) }
	b.Step("noop")
	if got, want := b.Line("cpu"), "[#######.......................] 1/4  1m30s  cpu"; got != want {
		t.Fatalf("Line = %q, want %q", got, want)
	}
	for range 10 {
		b.Step("x")
	}
	if got := b.Line("end"); !strings.HasPrefix(got, "["+strings.Repeat("#", 30)+"] 4/4") {
		t.Fatalf("Line after more steps than total = %q", got)
	}
}

func TestSilentWhenNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 2)
	b.Step("a")
	b.Draw("b")
	b.Finish()
	if buf.Len() != 0 {
		t.Fatalf("bar wrote %q to a non-terminal", buf.String())
	}
}

func ExampleBar() {
	var buf bytes.Buffer // not a terminal: the bar stays silent
	bar := New(&buf, 3)
	for _, step := range []string{"noop", "cpu", "sleep"} {
		bar.Draw(step)
		// ... run the step ...
		bar.Step(step)
	}
	bar.Finish()
	fmt.Println(buf.Len())
	// Output: 0
}
