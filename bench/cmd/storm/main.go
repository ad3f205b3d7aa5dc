package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/shoal-go/shoal/bench/internal/cli"
	"github.com/shoal-go/shoal/bench/internal/progress"
	"github.com/shoal-go/shoal/bench/storm"
)

func main() { os.Exit(run(os.Args[1:])) }

type options struct {
	cfg         storm.Config
	cgroup      bool
	cgroupLimit int64
	child       string
	waitGo      bool
	only        string
}

func parse(args []string) (*options, error) {
	o := &options{cfg: storm.DefaultConfig()}
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	fs.IntVar(&o.cfg.Disks, "disks", o.cfg.Disks, "disks per tower (2^disks - 1 moves)")
	fs.IntVar(&o.cfg.Towers, "towers", o.cfg.Towers, "number of towers")
	fs.IntVar(&o.cfg.Rounds, "rounds", o.cfg.Rounds, "SHA-256 passes over its buffer per move (the serial work)")
	buffer := fs.String("buffer", "16KiB", "buffer held by each pending move")
	budget := fs.String("budget", "256MiB", "shoal's memory budget")
	rawLimit := fs.String("raw-limit", "0", "stop the raw storm at this resident size (0: 4 x budget)")
	fs.BoolVar(&o.cgroup, "cgroup", false, "run each variant in a memory-limited cgroup (root only)")
	cgLimit := fs.String("cgroup-limit", "0", "memory limit of each cgroup (0: 1.5 x budget)")
	fs.StringVar(&o.only, "only", "", "run one variant (shoal or raw) in this process")
	fs.StringVar(&o.child, "child", "", "internal: run one variant and write its result as JSON")
	fs.BoolVar(&o.waitGo, "wait-go", false, "internal: wait for a line on stdin before starting")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	for _, b := range []struct {
		s   string
		dst *int64
	}{{*budget, &o.cfg.Budget}, {*rawLimit, &o.cfg.RawLimit}, {*cgLimit, &o.cgroupLimit}} {
		if *b.dst, err = cli.ParseBytes(b.s); err != nil {
			return nil, err
		}
	}
	var buf int64
	if buf, err = cli.ParseBytes(*buffer); err != nil {
		return nil, err
	}
	o.cfg.Buffer = int(buf)
	if o.cgroupLimit == 0 {
		o.cgroupLimit = o.cfg.Budget + o.cfg.Budget/2
	}
	return o, nil
}

func run(args []string) int {
	o, err := parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if o.child != "" {
		return runChild(ctx, o)
	}
	if o.only != "" {
		o.cfg.Variant = o.only
		res, err := runHere(ctx, o.cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm:", err)
			if res == nil {
				return 2
			}
		}
		printSideBySide(os.Stdout, o, []outcome{{variant: o.only, res: res}})
		return 0
	}
	var outs []outcome
	for _, v := range []string{storm.Shoal, storm.Raw} {
		outs = append(outs, runVariant(ctx, o, v))
		if ctx.Err() != nil {
			break
		}
	}
	printSideBySide(os.Stdout, o, outs)
	if len(outs) > 0 && !outs[0].sound() {
		return 1
	}
	return 0
}

// sound reports whether the variant kept every promise of the storm: it
// reported, without an error, every move applied once and legally (a move
// run twice is refused by the pegs as illegal, and its tower may still end
// solved), and every tower solved.
func (o outcome) sound() bool {
	r := o.res
	return r != nil && r.Error == "" && r.Solved == r.Towers && r.Illegal == 0 && r.Applied == r.Moves
}

func runHere(ctx context.Context, cfg storm.Config) (*storm.Result, error) {
	cfg.Progress = os.Stderr
	cfg.Interactive = progress.IsTerminal(os.Stderr)
	return storm.Run(ctx, cfg)
}

// runChild is the child process: it runs one variant and writes its Result
// as one JSON line on stdout.
func runChild(ctx context.Context, o *options) int {
	if o.waitGo {
		// The parent moves this process into its cgroup, then says go.
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "storm: waiting for the parent:", err)
			return 2
		}
	}
	o.cfg.Variant = o.child
	res, err := runHere(ctx, o.cfg)
	if res == nil {
		res = &storm.Result{Variant: o.child}
	}
	if err != nil {
		res.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

// outcome is what the parent learned about one child.
type outcome struct {
	variant  string
	res      *storm.Result
	killed   string // how the child died, if it did not report
	cgPeak   int64  // the cgroup's peak usage, with -cgroup
	cgOOM    int    // the cgroup's OOM kills, with -cgroup
	cgroup   string // the cgroup's path, with -cgroup
	setupErr string // why the variant could not run as asked
}

// runVariant runs variant v in a child process, in a cgroup with -cgroup.
func runVariant(ctx context.Context, o *options, v string) outcome {
	out := outcome{variant: v}
	self, err := os.Executable()
	if err != nil {
		out.setupErr = "cannot re-run this program: " + err.Error()
		return out
	}
	args := childArgs(o, v)
	var cg *cgroup
	if o.cgroup {
		cg, err = newCgroup(fmt.Sprintf("shoal-storm-%d-%s", os.Getpid(), v), o.cgroupLimit)
		if err != nil {
			out.setupErr = "cgroup: " + err.Error()
			return out
		}
		defer func() {
			if err := cg.remove(); err != nil {
				fmt.Fprintln(os.Stderr, "storm: removing cgroup:", err)
			}
		}()
		out.cgroup = cg.dir
		args = append(args, "-wait-go")
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	var stdout strings.Builder
	cmd.Stdout = &stdout
	var goLine io.WriteCloser
	if cg != nil {
		if goLine, err = cmd.StdinPipe(); err != nil {
			out.setupErr = err.Error()
			return out
		}
	}
	if err := cmd.Start(); err != nil {
		out.setupErr = "starting the child: " + err.Error()
		return out
	}
	if cg != nil {
		if err := cg.add(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			out.setupErr = "cgroup: " + err.Error()
			return out
		}
		fmt.Fprintln(goLine, "go")
		goLine.Close()
	}
	waitErr := cmd.Wait()
	if cg != nil {
		out.cgPeak, out.cgOOM = cg.stats()
	}
	if out.cgOOM > 0 && out.killed == "" && waitErr != nil {
		out.killed = waitErr.Error()
	}
	var res storm.Result
	if line := strings.TrimSpace(stdout.String()); line != "" && json.Unmarshal([]byte(line), &res) == nil {
		out.res = &res
	}
	if waitErr != nil && out.res == nil {
		out.killed = waitErr.Error()
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				out.killed = fmt.Sprintf("killed (signal %d, %v)", int(ws.Signal()), ws.Signal())
			}
		}
	}
	return out
}

func childArgs(o *options, v string) []string {
	rawLimit := o.cfg.RawLimit
	if o.cgroup && rawLimit == 0 {
		// Let the cgroup stop the raw storm, not its own guard.
		rawLimit = 4 * o.cgroupLimit
	}
	return []string{
		"-child", v,
		"-disks", strconv.Itoa(o.cfg.Disks),
		"-towers", strconv.Itoa(o.cfg.Towers),
		"-rounds", strconv.Itoa(o.cfg.Rounds),
		"-buffer", strconv.Itoa(o.cfg.Buffer),
		"-budget", strconv.FormatInt(o.cfg.Budget, 10),
		"-raw-limit", strconv.FormatInt(rawLimit, 10),
	}
}
