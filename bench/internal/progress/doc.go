// Package progress draws a one-line progress bar on a terminal, for the
// benchmark command's long runs.
package progress
