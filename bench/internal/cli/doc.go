// Package cli holds what the bench/ commands share to read their flags.
package cli
