package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/shoal-go/shoal/bench/chatsim"
	"github.com/shoal-go/shoal/bench/internal/cli"
	"github.com/shoal-go/shoal/bench/internal/progress"
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
	fs.IntVar(&cfg.MaxBatch, "max-batch", cfg.MaxBatch, "most messages per persist write, for every scheduler (0: the Batcher's default, 256)")
	fs.Float64Var(&cfg.ErrorRate, "errors", cfg.ErrorRate, "fraction of messages whose persist fails (failing the whole write that carries them)")
	fs.Float64Var(&cfg.PanicRate, "panics", cfg.PanicRate, "fraction of messages whose fan-out panics")
	compare := fs.Bool("compare", false, "also run the same load through ants and pond, each with a mutex and a pending batch per room")
	variant := fs.String("variant", chatsim.Shoal, fmt.Sprintf("scheduler to run alone, one of %v", chatsim.Variants))
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	b, err := parseBudget(*budget)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatsim:", err)
		return 2
	}
	cfg.Budget = b
	if !*quiet {
		cfg.Progress = os.Stderr
		cfg.Interactive = progress.IsTerminal(os.Stderr)
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
		if v == chatsim.Shoal && (res.Lost() != 0 || res.OutOfOrder != 0 || res.Overlaps != 0 || res.Duplicates != 0) {
			status = 1
		}
		if ctx.Err() != nil {
			break
		}
	}
	chatsim.Format(os.Stdout, cfg, results...)
	return status
}

// parseBudget reads the -budget flag: a byte size above zero.
func parseBudget(s string) (int64, error) {
	n, err := cli.ParseBytes(s)
	if err == nil && n == 0 {
		err = fmt.Errorf("budget %q: want a size above 0", s)
	}
	return n, err
}
