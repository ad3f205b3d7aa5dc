// Command chat runs the chat server: WebSocket endpoint at /ws, live page at
// /, Prometheus metrics at /metrics. It stops on SIGINT or SIGTERM after
// storing and delivering every message it accepted (for up to 30 s); a
// second signal during that drain stops it at once.
//
//	go run ./examples/chat -addr 127.0.0.1:8080 -db chat.db -backend shoal
package main
