//go:build unix

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// chromium finds a headless-capable Chromium; "" if none is installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "chromium-headless-shell", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestPageInBrowser opens the live page in headless Chromium and reads its
// DOM over the DevTools protocol while messages are sent: the accepted
// figure on the page must follow the server, 3 and then 8. Skipped without
// Chromium (Debian: apt-get install chromium).
func TestPageInBrowser(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium on PATH: apt-get install chromium to run this test")
	}
	_, ts := startServer(t, Config{StatsInterval: 50 * time.Millisecond, Rate: 1e6})
	c := dial(t, ts)
	c.join("r")

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--remote-debugging-port=0", "--user-data-dir="+profileDir(t), ts.URL+"/")
	// Chromium's helper processes share its process group, so that the
	// kill below ends them too, not only the browser.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	var devtools string // ws://127.0.0.1:PORT/devtools/browser/…
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "DevTools listening on "); ok {
			devtools = after
			break
		}
	}
	if devtools == "" {
		t.Fatal("chromium printed no DevTools address")
	}
	go func() { // keep reading so that chromium never blocks on stderr; ends at exit
		for sc.Scan() {
		}
	}()
	host := strings.Split(strings.TrimPrefix(devtools, "ws://"), "/")[0]
	var page string
	waitFor(t, "the page's DevTools target", func() bool {
		resp, err := http.Get("http://" + host + "/json/list")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var targets []struct{ Type, URL, WebSocketDebuggerURL string }
		json.NewDecoder(resp.Body).Decode(&targets)
		for _, tg := range targets {
			if tg.Type == "page" && strings.HasPrefix(tg.URL, ts.URL) {
				page = tg.WebSocketDebuggerURL
				return true
			}
		}
		return false
	})
	cdp, _, err := websocket.Dial(ctx, page, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cdp.CloseNow()
	cdp.SetReadLimit(-1)
	id := 0
	accepted := func() string { // the page's accepted cell, read from its DOM
		id++
		req, _ := json.Marshal(map[string]any{"id": id, "method": "Runtime.evaluate",
			"params": map[string]any{"expression": `document.getElementById("accepted").textContent`}})
		if err := cdp.Write(ctx, websocket.MessageText, req); err != nil {
			t.Fatal(err)
		}
		for {
			_, data, err := cdp.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var resp struct {
				ID     int
				Result struct{ Result struct{ Value string } }
			}
			if json.Unmarshal(data, &resp) == nil && resp.ID == id {
				return resp.Result.Result.Value
			}
		}
	}
	send := func(from, n int) {
		for i := range n {
			c.send(Frame{Type: "send", Room: "r", ClientSeq: uint64(from + i), Text: "x"})
		}
	}
	send(1, 3)
	waitFor(t, "the page to show 3 accepted", func() bool { return accepted() == "3" })
	send(4, 5)
	waitFor(t, "the page to show 8 accepted", func() bool { return accepted() == "8" })
}

// profileDir returns a directory for Chromium's profile, removed at
// cleanup. Helper processes killed with the browser may still be writing
// into it for a moment, so removal is retried until it succeeds.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "chat-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		waitFor(t, "chromium's profile directory to be removed", func() bool { return os.RemoveAll(dir) == nil })
	})
	return dir
}
