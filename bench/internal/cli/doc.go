// Package cli holds what the bench/ commands share: reading byte-size flags
// and printing aligned text tables.
package cli
