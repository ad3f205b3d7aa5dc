package report

import (
	"bytes"
	"math"
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

// TestFormatEdges: the number formats at their edges. Nothing prints NaN,
// Inf, an exponent, a wrapped integer or "1000" in a unit that has a next
// one; negative values keep their sign and the unit of their magnitude.
func TestFormatEdges(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name, got, want string
	}{
		{"Float NaN", Float(nan), "-"},
		{"Float +Inf", Float(inf), "-"},
		{"Float -Inf", Float(-inf), "-"},
		{"Float 0", Float(0), "0"},
		{"Float -0", Float(math.Copysign(0, -1)), "0"},
		{"Float 0.04", Float(0.04), "0.0"},
		{"Float -0.04", Float(-0.04), "0.0"},
		{"Float 99.94", Float(99.94), "99.9"},
		{"Float 99.95", Float(99.95), "100"},
		{"Float 99.99", Float(99.99), "100"},
		{"Float 100", Float(100), "100"},
		{"Float 999.5", Float(999.5), "1,000"},
		{"Float -5", Float(-5), "-5.0"},
		{"Float -99.99", Float(-99.99), "-100"},
		{"Float -1234.4", Float(-1234.4), "-1,234"},
		{"Float 1e19", Float(1e19), "10,000,000,000,000,000,000"},
		{"Float -1e19", Float(-1e19), "-10,000,000,000,000,000,000"},

		{"Count MinInt64", Count(math.MinInt64), "-9,223,372,036,854,775,808"},
		{"Count -999", Count(-999), "-999"},
		{"Count -100000", Count(-100000), "-100,000"},

		{"SI NaN", SI(nan), "-"},
		{"SI +Inf", SI(inf), "-"},
		{"SI -Inf", SI(-inf), "-"},
		{"SI 0", SI(0), "0"},
		{"SI 999.4", SI(999.4), "999"},
		{"SI 999.5", SI(999.5), "1.0k"},
		{"SI 999949", SI(999_949), "999.9k"},
		{"SI 999950", SI(999_950), "1.00M"},
		{"SI 999994999", SI(999_994_999), "999.99M"},
		{"SI 999995000", SI(999_995_000), "1.00G"},
		{"SI -1500", SI(-1500), "-1.5k"},
		{"SI -8.934e6", SI(-8.934e6), "-8.93M"},
		{"SI -0.4", SI(-0.4), "-0.4"},
		{"SI 0.25", SI(0.25), "0.25"},
		{"SI 9.94", SI(9.94), "9.9"},
		{"SI 9.95", SI(9.95), "10"},
		{"SI 0.001", SI(0.001), "0.001"},
		{"SI 0.0004", SI(0.0004), "0"},
		{"SI -0.0004", SI(-0.0004), "0"},

		{"Bytes -1", Bytes(-1), "-"},
		{"Bytes 1", Bytes(1), "0.0 MiB"},

		{"Duration 0", Duration(0), "0ns"},
		{"Duration -5", Duration(-5), "-5ns"},
		{"Duration -1500", Duration(-1500), "-1.5µs"},
		{"Duration -999600", Duration(-999_600), "-1ms"},
		{"Duration 999.4s", Duration(999_400_000_000), "999s"},
		{"Duration 999.6s", Duration(999_600_000_000), "1000s"},
		{"Duration 12345s", Duration(12_345_000_000_000), "12345s"},
		{"Duration MaxInt64", Duration(math.MaxInt64), "9223372037s"},
		{"Duration MinInt64", Duration(math.MinInt64), "-9223372037s"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
