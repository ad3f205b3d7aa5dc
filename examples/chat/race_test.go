//go:build race

package main

// raceFlags builds the server binary the way the test binary was built, so
// that the build reuses its compiled packages.
var raceFlags = []string{"-race"}
