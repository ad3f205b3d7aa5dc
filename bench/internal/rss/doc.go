// Package rss reads a process's peak resident set size, for the benchmark
// command's per-library child processes.
package rss
