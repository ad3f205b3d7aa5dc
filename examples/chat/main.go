package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
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
	var cfg server.Config
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.StringVar(&cfg.DBPath, "db", "chat.db", "SQLite database file")
	flag.StringVar(&cfg.Backend, "backend", server.BackendShoal, "scheduler: shoal, or pond (pond v2 + a mutex per room)")
	flag.Int64Var(&cfg.MemoryBudget, "memory-budget", 0, "memory budget in bytes for the breaker (0: none)")
	rateLimit := flag.Float64("rate", 200, "frames per second per connection")
	flag.IntVar(&cfg.WriteQueue, "write-queue", 256, "write queue bound per connection, in chunks")
	withPprof := flag.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/, with block and mutex profiling on")
	flag.Parse()
	cfg.Rate = rate.Limit(*rateLimit)
	if err := run(*addr, cfg, *withPprof); err != nil {
		slog.Error("chat", "err", err)
		os.Exit(1)
	}
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
	slog.Info("chat: shutting down")
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
