package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/shoal-go/shoal/examples/chat/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait for an event.
const testTimeout = 30 * time.Second

// TestSIGTERMDrains builds the server binary, starts it, has clients send
// without waiting for answers, and sends it SIGTERM while they do. The
// process must exit 0 having stored every message it accepted: the
// database, reopened, holds exactly the accepted count the server logs at
// exit, and every stored message was acknowledged to its sender before
// the connection closed with status 1001 (going away). A send that
// arrives once the drain began is refused: the first with a shutting_down
// frame, the rest without an answer.
func TestSIGTERMDrains(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on windows")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chat")
	args := append([]string{"build", "-o", bin}, raceFlags...)
	// go test puts its own toolchain's bin first on the PATH of a test.
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	build := exec.Command(gotool, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbPath := filepath.Join(dir, "chat.db")
	// The clients send without pacing: a room's handler queues up to one
	// chunk per call to each member, and its 3 members send 2,000 messages
	// each. A write queue above that keeps a starved writer (race detector,
	// busy CI) from having a client cut off as a slow consumer, which is
	// TestSlowConsumer's subject, not this test's.
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-db", dbPath, "-rate", "1000000", "-write-queue", "16384")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	// The log names the address the server listens on, and at exit how
	// many messages it accepted.
	addrs := make(chan string, 1)
	var logMu sync.Mutex
	var logText bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		addrRE := regexp.MustCompile(`addr=http://(\S+)`)
		for sc.Scan() {
			logMu.Lock()
			logText.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		exited <- cmd.Wait() // after the pipe's last read, as Wait requires
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-exited:
		exited <- err
		t.Fatalf("server exited before serving: %v\n%s", err, logText.String())
	case <-time.After(testTimeout):
		t.Fatal("server did not log its address")
	}

	const (
		clients = 8
		perConn = 2000 // messages each client sends without waiting: more than it can before SIGTERM
	)
	type result struct {
		acks, shutdownErrs int
		closeStatus        websocket.StatusCode
	}
	results := make([]result, clients)
	firstAcks := make(chan struct{}, clients)
	var wg sync.WaitGroup
	for i := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		room := fmt.Sprint("r", i%3)
		if err := ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","room":%q}`, room)); err != nil {
			t.Fatal(err)
		}
		r := &results[i]
		wg.Go(func() { // reader: counts acks and shutdown errors until the connection ends
			signalled := false
			for {
				_, data, err := ws.Read(context.Background())
				if err != nil {
					r.closeStatus = websocket.CloseStatus(err)
					return
				}
				for line := range bytes.SplitSeq(data, []byte{'\n'}) {
					var f server.Frame
					if json.Unmarshal(line, &f) != nil {
						continue
					}
					switch {
					case f.Type == "ack":
						r.acks++
						if !signalled {
							signalled = true
							firstAcks <- struct{}{}
						}
					case f.Type == "error" && f.Code == server.CodeShutdown:
						r.shutdownErrs++
					}
				}
			}
		})
		wg.Go(func() { // writer: sends until done or the connection is gone
			for n := 1; n <= perConn; n++ {
				b := fmt.Appendf(nil, `{"type":"send","room":%q,"client_seq":%d,"text":"m%d"}`, room, n, n)
				if ws.Write(context.Background(), websocket.MessageText, b) != nil {
					return
				}
			}
		})
	}
	// Every client has had a message acknowledged: the server is storing
	// while more arrive. Then SIGTERM.
	for range clients {
		select {
		case <-firstAcks:
		case <-time.After(testTimeout):
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("no ack within the timeout\n%s", logText.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, logText.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("server did not exit after SIGTERM")
	}
	wg.Wait()

	logMu.Lock()
	m := regexp.MustCompile(`chat: stopped accepted=(\d+)`).FindStringSubmatch(logText.String())
	logMu.Unlock()
	if m == nil {
		t.Fatalf("no stop line in the log:\n%s", logText.String())
	}
	accepted, _ := strconv.ParseInt(m[1], 10, 64)

	// Close checkpointed the whole log into the database file.
	if fi, err := os.Stat(dbPath + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("write-ahead log not checkpointed at exit: %d bytes", fi.Size())
	}
	db, err := server.OpenDB(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored, err := db.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	acks, refused := 0, 0
	for i, r := range results {
		acks += r.acks
		refused += r.shutdownErrs
		if r.shutdownErrs > 1 {
			t.Errorf("client %d: %d shutting_down frames, want at most 1", i, r.shutdownErrs)
		}
		if r.closeStatus != websocket.StatusGoingAway {
			t.Errorf("client %d: connection ended with status %v, want %v (going away)", i, r.closeStatus, websocket.StatusGoingAway)
		}
	}
	t.Logf("accepted %d, stored %d, acknowledged %d, refused for the shutdown %d", accepted, stored, acks, refused)
	if stored != accepted || int64(acks) != stored {
		t.Fatalf("accepted %d, stored %d, acknowledged %d: want all equal", accepted, stored, acks)
	}
}
