package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/shoal-go/shoal/examples/chat/server"
	_ "modernc.org/sqlite"
)

// A second SIGTERM during the drain stops the server at once. The drain
// is held by a message whose transaction waits for the database's write
// lock, which the test holds (the server would wait its busy timeout,
// 10 s, three times, then its 30 s deadline): the process must end within
// a few seconds of the second signal, killed by it.
func TestSecondSignalStopsDrain(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on windows")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chat")
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	build := exec.Command(gotool, append(append([]string{"build", "-o", bin}, raceFlags...), ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbPath := filepath.Join(dir, "chat.db")
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-db", dbPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitLine := func(re string) []string {
		t.Helper()
		rx := regexp.MustCompile(re)
		deadline := time.After(testTimeout)
		for {
			select {
			case l := <-lines:
				if m := rx.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("no log line matching %q", re)
			}
		}
	}
	addr := waitLine(`addr=http://(\S+)`)[1]

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	go func() { // reads until the connection ends
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()

	ext, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	xc, err := ext.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer xc.Close()
	if _, err := xc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer xc.ExecContext(context.Background(), "ROLLBACK")

	for _, f := range []string{`{"type":"join","room":"r"}`, `{"type":"send","room":"r","client_seq":1,"text":"x"}`} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	// The send was accepted: the drain must wait for its transaction.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(testTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Get("http://" + addr + "/stats.json")
		if err != nil {
			t.Fatal(err)
		}
		var st server.Stats
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Accepted == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("send not accepted")
		}
		<-tick.C
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(`chat: shutting down`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Fatalf("exit after a second SIGTERM: %v, want killed by it", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still draining 5 s after a second SIGTERM")
	}
}
