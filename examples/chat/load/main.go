package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"
)

func main() {
	var cfg config
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	flag.IntVar(&cfg.Conns, "conns", 2000, "WebSocket clients")
	flag.IntVar(&cfg.Rooms, "rooms", 10000, "rooms to draw from")
	flag.IntVar(&cfg.RoomsPerConn, "rooms-per-conn", 4, "rooms each client joins")
	flag.IntVar(&cfg.MaxMembers, "max-members", 100, "members per room at most")
	flag.Float64Var(&cfg.Zipf, "zipf", 1.1, "Zipf exponent of the room draw")
	flag.Float64Var(&cfg.Rate, "rate", 1000, "messages sent per second, all clients together")
	flag.DurationVar(&cfg.Duration, "duration", 20*time.Second, "sending time")
	flag.DurationVar(&cfg.Drain, "drain", 30*time.Second, "longest wait for the last deliveries")
	flag.Float64Var(&cfg.Kill, "kill", 0, "clients dropped and reconnected per second")
	flag.IntVar(&cfg.TextBytes, "text", 64, "message text length in bytes")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the sending window and drain to this file")
	blockProfile := flag.String("blockprofile", "", "write block and mutex profiles to this file and this file.mutex")
	flag.Parse()
	cfg.URL = "ws://" + *addr + "/ws"
	cfg.StatsURL = "http://" + *addr + "/stats.json"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
	}
	if *blockProfile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		runtime.SetMutexProfileFraction(10)
	}
	rep, err := run(ctx, cfg)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *blockProfile != "" {
		writeProfile("block", *blockProfile)
		writeProfile("mutex", *blockProfile+".mutex")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(os.Stdout, &cfg, rep)
	}
	if rep.failed() {
		os.Exit(2)
	}
}

// failed reports whether the run found a fault: a message lost, out of
// order in its room or in its sender's order, duplicated or unanswered, a
// frame of a room no client joined, or a client that ended disconnected.
func (r *report) failed() bool {
	return r.Lost+r.OutOfOrder+r.Dups+r.Unacked+r.Disconnected+r.SenderReordered+r.Foreign > 0
}

// printReport writes rep for people.
func printReport(w io.Writer, cfg *config, r *report) {
	backend := "?"
	if r.Server != nil {
		backend = r.Server.Backend
	}
	fmt.Fprintf(w, "backend %s: %d clients in %d rooms (%d memberships), %.0f msg/s offered, %v, kill %.1f/s\n",
		backend, r.Conns, r.RoomsUsed, r.Members, cfg.Rate, r.Window.Round(time.Millisecond), cfg.Kill)
	fmt.Fprintf(w, "sent       %9d  %8.0f msg/s\n", r.Sent, r.SentRate)
	fmt.Fprintf(w, "acked      %9d\n", r.Acked)
	fmt.Fprintf(w, "delivered  %9d  %8.0f msg/s in the window\n", r.Delivered, r.DeliveredRate)
	fmt.Fprintf(w, "replayed   %9d  after %d reconnects\n", r.Replayed, r.Reconnects)
	fmt.Fprintf(w, "e2e latency p50 %v  p99 %v  p99.9 %v  max %v\n", r.P50.Round(time.Microsecond),
		r.P99.Round(time.Microsecond), r.P999.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	fmt.Fprintf(w, "  from server acceptance p50 %v  p99 %v\n", r.ServerP50.Round(time.Microsecond), r.ServerP99.Round(time.Microsecond))
	fmt.Fprintf(w, "  worst per second:")
	for _, d := range r.WorstPerSecond {
		fmt.Fprintf(w, " %v", d.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "lost %d  out of order %d  duplicates %d  unacked %d  disconnected %d  foreign %d\n",
		r.Lost, r.OutOfOrder, r.Dups, r.Unacked, r.Disconnected, r.Foreign)
	fmt.Fprintf(w, "in flight at a drop %d (%d of them stored)  dropped by the server %d  truncated replays %d  sender-order inversions %d\n",
		r.InFlightAtDrop, r.InFlightStored, r.Dropped, r.Truncated, r.SenderReordered)
	if r.Errors > 0 {
		codes := make([]string, 0, len(r.ErrorCodes))
		for c := range r.ErrorCodes {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		fmt.Fprintf(w, "error frames %d:", r.Errors)
		for _, c := range codes {
			fmt.Fprintf(w, " %s=%d", c, r.ErrorCodes[c])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "client: peak RSS %.0f MiB, CPU %.1f s\n", r.ClientPeakRSS, r.ClientCPU)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server: peak RSS %.0f MiB, CPU %.1f s in the run, mean batch %.2f msgs, slow consumers %d\n",
			float64(s.PeakRSS)/(1<<20), r.ServerCPU, r.MeanBatch, s.SlowConsumers)
	}
}

// writeProfile writes the named runtime profile to path.
func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	pprof.Lookup(name).WriteTo(f, 0)
}
