// Package report turns benchmark results into a text table, the Markdown of
// docs/BENCHMARKS.md and PNG charts.
package report
