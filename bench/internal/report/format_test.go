package report

import (
	"bytes"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoal-go/shoal/bench"
)

// TestRowsSaidToStartGoroutinesBeforeTheClockDo: the Markdown names the
// rows that start their goroutines before the measured time (in New, as
// the channel pool does); each row it names must do so.
func TestRowsSaidToStartGoroutinesBeforeTheClockDo(t *testing.T) {
	var md bytes.Buffer
	if err := Markdown(&md, nil, Meta{Date: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(md.String()), " ")
	_, after, ok := strings.Cut(text, "inside the measured time, where ")
	claim, _, ok2 := strings.Cut(after, "goroutines before it")
	if !ok || !ok2 {
		t.Fatalf("no sentence on goroutines started before the clock:\n%s", md.String())
	}
	names := regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(claim, -1)
	if len(names) == 0 {
		t.Fatalf("the sentence names no row: %q", claim)
	}
	for _, m := range names {
		lib, ok := bench.LibByName(m[1])
		if !ok {
			t.Errorf("%q names no row", m[1])
			continue
		}
		before := runtime.NumGoroutine()
		r, err := lib.New(bench.Config{Concurrency: 64, Groups: 16})
		if err != nil {
			t.Fatal(err)
		}
		started := runtime.NumGoroutine() - before
		r.Wait()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if started <= 0 {
			t.Errorf("the docs say %s starts its goroutines before the clock; its New starts none", lib.Name)
		}
	}
}

// TestDurationNeverPrintsAnExponent: a value that rounds up to the next
// unit at three digits prints in that unit ("1ms"), not as "1e+03µs"
// (below 1,000 s).
func TestDurationNeverPrintsAnExponent(t *testing.T) {
	for ns, want := range map[int64]string{
		999: "999ns", 1000: "1µs", 999_400: "999µs", 999_500: "1ms", 999_600: "1ms", 999_999: "1ms",
		999_400_000: "999ms", 999_600_000: "1s",
	} {
		if got := Duration(ns); got != want {
			t.Errorf("Duration(%d) = %q, want %q", ns, got, want)
		}
	}
}
