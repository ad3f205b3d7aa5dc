// Package proccpu reads the CPU time the process has used, user and
// system, over all its threads: the pool's monitor judges from it whether
// the processors stood idle, and the chat simulation and the chat server
// report it. Where the system does not report it (no getrusage), Read says
// so and callers fall back on what they know without it.
package proccpu
