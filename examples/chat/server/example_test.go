package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/coder/websocket"
	"github.com/shoal-go/shoal/examples/chat/server"
)

// A server behind an http.Server, one client that joins a room and sends a
// message: the room numbers it, stores it, delivers it and acknowledges it.
func ExampleServer() {
	dir, _ := os.MkdirTemp("", "chat")
	defer os.RemoveAll(dir)
	srv, err := server.New(server.Config{DBPath: filepath.Join(dir, "chat.db")})
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"join","room":"lobby"}`))
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"send","room":"lobby","client_seq":1,"text":"hi"}`))
	for seen := 0; seen < 4; {
		_, data, err := ws.Read(ctx)
		if err != nil {
			panic(err)
		}
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			var f server.Frame
			json.Unmarshal(line, &f)
			switch f.Type {
			case "hello":
			case "joined":
				fmt.Println("joined", f.Room, "at seq", f.Seq)
			case "msg":
				fmt.Println("msg", f.Seq, f.Text)
			case "ack":
				fmt.Println("ack", f.Seq, "for client_seq", f.ClientSeq)
			}
			seen++
		}
	}
	// Output:
	// joined lobby at seq 0
	// msg 1 hi
	// ack 1 for client_seq 1
}

// The zero Config works once DBPath is set; fields left zero take their
// documented defaults.
func ExampleConfig() {
	cfg := server.Config{
		DBPath:       "chat.db",
		Backend:      server.BackendShoal,
		MaxTextBytes: 2048,
		MaxRooms:     16,
		Rate:         50, // frames per second per connection
		Burst:        100,
	}
	fmt.Println(cfg.Backend, cfg.MaxRooms)
	// Output: shoal 16
}

// Frames are JSON objects; a join with since asks for what was missed.
func ExampleFrame() {
	since := uint64(41)
	b, _ := json.Marshal(server.Frame{Type: "join", Room: "lobby", Since: &since})
	fmt.Println(string(b))
	// Output: {"type":"join","room":"lobby","since":41}
}

// OpenDB opens the message store; Range reads a room's messages back.
func ExampleDB() {
	dir, _ := os.MkdirTemp("", "chat")
	defer os.RemoveAll(dir)
	db, err := server.OpenDB(filepath.Join(dir, "chat.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	n, _ := db.Count(context.Background())
	msgs, _ := db.Range(context.Background(), "lobby", 0, 100, 10)
	fmt.Println(n, len(msgs))
	// Output: 0 0
}

// A Message is what the database holds and a msg frame carries.
func ExampleMessage() {
	m := server.Message{Room: "lobby", Seq: 7, From: "c3", ClientSeq: 2, Text: "hi"}
	fmt.Printf("%s #%d from %s\n", m.Room, m.Seq, m.From)
	// Output: lobby #7 from c3
}

// RoomState is what a state frame lists for each of the client's rooms.
func ExampleRoomState() {
	b, _ := json.Marshal(server.RoomState{Room: "lobby", Seq: 18, Members: 3})
	fmt.Println(string(b))
	// Output: {"room":"lobby","seq":18,"members":3}
}

// Stats is what /stats.json and the live page show.
func ExampleStats() {
	dir, _ := os.MkdirTemp("", "chat")
	defer os.RemoveAll(dir)
	srv, err := server.New(server.Config{DBPath: filepath.Join(dir, "chat.db")})
	if err != nil {
		panic(err)
	}
	defer srv.Close(context.Background())
	st := srv.Stats()
	fmt.Println(st.Backend, st.Conns, st.Accepted)
	// Output: shoal 0 0
}

// ProcStats reads the process's memory and CPU time.
func ExampleProcStats() {
	rss, peak, _ := server.ProcStats()
	fmt.Println(rss <= peak)
	// Output: true
}
