package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Bar is a progress bar for a known number of steps. It draws only when its
// writer is a terminal, so piped or captured output stays clean. A Bar is
// used by one goroutine.
type Bar struct {
	w       io.Writer
	total   int
	done    int
	width   int
	enabled bool
	start   time.Time
	now     func() time.Time
}

// New returns a bar of total steps writing to w; it draws only if w is a
// terminal (an *os.File on a character device).
func New(w io.Writer, total int) *Bar {
	return &Bar{w: w, total: max(total, 1), width: 30, enabled: IsTerminal(w), start: time.Now(), now: time.Now}
}

// IsTerminal reports whether w is an *os.File on a character device.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Step records one finished step and redraws the bar with label, the step
// about to run.
func (b *Bar) Step(label string) {
	b.done = min(b.done+1, b.total)
	b.Draw(label)
}

// Draw redraws the bar with label without counting a step.
func (b *Bar) Draw(label string) {
	if !b.enabled {
		return
	}
	fmt.Fprint(b.w, "\r\033[K"+b.Line(label))
}

// Line renders the bar as text: "[#####.....] 12/40  1m02s  noop/p8 pond".
func (b *Bar) Line(label string) string {
	filled := b.done * b.width / b.total
	elapsed := b.now().Sub(b.start).Round(time.Second)
	return fmt.Sprintf("[%s%s] %d/%d %6s  %s",
		strings.Repeat("#", filled), strings.Repeat(".", b.width-filled),
		b.done, b.total, elapsed, label)
}

// Finish clears the bar's line.
func (b *Bar) Finish() {
	if b.enabled {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
