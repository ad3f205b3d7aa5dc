package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/shoal-go/shoal/bench/chatsim"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := chatsim.DefaultConfig()
	fs := flag.NewFlagSet("chatsim", flag.ContinueOnError)
	fs.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "number of chat rooms")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "mean messages per second over the day (the evening peak is about 3x)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "wall-clock length of the compressed day")
	budget := fs.String("budget", "512MiB", "shoal's memory budget (bytes, or with KiB, MiB, GiB)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the load")
	fs.IntVar(&cfg.MaxWorkers, "workers", cfg.MaxWorkers, "most goroutines running tasks, for every scheduler")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "shoal's shards (0: the pool's default)")
	fs.Float64Var(&cfg.ErrorRate, "errors", cfg.ErrorRate, "fraction of messages whose persist fails")
	fs.Float64Var(&cfg.PanicRate, "panics", cfg.PanicRate, "fraction of messages whose fan-out panics")
	compare := fs.Bool("compare", false, "also run the same load through ants and pond, each with a mutex per room")
	variant := fs.String("variant", chatsim.Shoal, fmt.Sprintf("scheduler to run alone, one of %v", chatsim.Variants))
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	b, err := parseBytes(*budget)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatsim:", err)
		return 2
	}
	cfg.Budget = b
	if !*quiet {
		cfg.Progress = os.Stderr
		cfg.Interactive = isTerminal(os.Stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	variants := []string{*variant}
	if *compare {
		variants = []string{chatsim.Shoal, chatsim.Ants, chatsim.Pond}
	}
	var results []*chatsim.Result
	status := 0
	for _, v := range variants {
		c := cfg
		c.Variant = v
		res, err := chatsim.Run(ctx, c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chatsim: %s: %v\n", v, err)
			if errors.Is(err, chatsim.ErrInvalidConfig) {
				return 2
			}
			status = 1
		}
		if res == nil {
			continue
		}
		results = append(results, res)
		if v == chatsim.Shoal && (res.Lost() != 0 || res.OutOfOrder != 0 || res.Overlaps != 0) {
			status = 1
		}
		if ctx.Err() != nil {
			break
		}
	}
	chatsim.Format(os.Stdout, cfg, results...)
	return status
}

// parseBytes reads "536870912", "512MiB", "1GiB", "64KiB" (also KB/MB/GB as
// the binary units).
func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad byte size %q (want e.g. 512MiB)", s)
	}
	return int64(n * float64(mult)), nil
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
