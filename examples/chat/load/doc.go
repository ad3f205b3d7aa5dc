// Command load drives a chat server with real WebSocket clients over the
// network and checks every delivery: each client joins rooms drawn from a
// Zipf distribution, sends at its share of the total rate, and checks that
// each room's messages arrive one sequence number after the other, with no
// gap and no duplicate, also after a reconnect (-kill). It reports the
// rates, the end-to-end latency, every anomaly, and both processes' peak
// RSS and CPU time.
//
//	go run ./examples/chat -db /tmp/chat.db &
//	go run ./examples/chat/load -addr 127.0.0.1:8080 -duration 20s
package main
