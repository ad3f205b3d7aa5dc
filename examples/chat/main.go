package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/shoal-go/shoal/examples/chat/server"
	"golang.org/x/time/rate"
)

func main() {
	addr, cfg, withPprof, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2) // the flag set printed the error and the usage
	}
	if err := run(addr, cfg, withPprof); err != nil {
		slog.Error("chat", "err", err)
		os.Exit(1)
	}
}

// parseFlags parses the command line. A value a flag cannot take, or an
// argument that is no flag, is an error, printed with the usage.
func parseFlags(args []string, stderr io.Writer) (addr string, cfg server.Config, withPprof bool, err error) {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&cfg.DBPath, "db", "chat.db", "SQLite database file")
	fs.StringVar(&cfg.Backend, "backend", server.BackendShoal, "scheduler: shoal, or pond (pond v2 + a mutex per room)")
	fs.Int64Var(&cfg.MemoryBudget, "memory-budget", 0, "memory budget in bytes for the breaker (0: none)")
	rateLimit := fs.Float64("rate", 200, "frames per second per connection (inf: no limit)")
	fs.IntVar(&cfg.WriteQueue, "write-queue", 256, "write queue bound per connection, in chunks")
	fs.BoolVar(&withPprof, "pprof", false, "serve net/http/pprof under /debug/pprof/, with block and mutex profiling on")
	if err = fs.Parse(args); err != nil {
		return
	}
	cfg.Rate = rate.Limit(*rateLimit)
	if math.IsInf(*rateLimit, 1) {
		cfg.Rate = rate.Inf
	}
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q (every setting is a flag)", fs.Arg(0))
	case !(*rateLimit > 0): // NaN too, which rate.Limiter takes as no limit
		err = fmt.Errorf("-rate %v: want a number of frames per second above 0", *rateLimit)
	case cfg.WriteQueue < 1:
		err = fmt.Errorf("-write-queue %d: want at least 1", cfg.WriteQueue)
	case cfg.MemoryBudget < 0:
		err = fmt.Errorf("-memory-budget %d: want 0 (none) or a number of bytes", cfg.MemoryBudget)
	}
	if err != nil {
		fmt.Fprintln(fs.Output(), err)
		fs.Usage()
	}
	return
}

func run(addr string, cfg server.Config, withPprof bool) error {
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close(context.Background())
		return err
	}
	var h http.Handler = srv
	if withPprof {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		runtime.SetMutexProfileFraction(10)
		mux := http.NewServeMux()
		mux.Handle("/", srv)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		h = mux
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	slog.Info("chat: serving", "addr", "http://"+ln.Addr().String(), "backend", cfg.Backend, "db", cfg.DBPath)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-served:
		srv.Close(context.Background())
		return err
	}
	// A second SIGINT or SIGTERM during the drain (up to 30 s) stops the
	// process at once, as the signal's default action does: an operator
	// who asks twice does not want to wait.
	stop()
	slog.Info("chat: shutting down; a second signal stops at once")
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs.SetKeepAlivesEnabled(false)
	err = srv.Close(cctx) // drains rooms and closes WebSockets (hijacked, so not hs's)
	if e := hs.Shutdown(cctx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	<-served
	st := srv.Stats()
	slog.Info("chat: stopped", "accepted", st.Accepted, "delivered", st.Delivered, "batches", st.Batches, "slow_consumers", st.SlowConsumers)
	return err
}
