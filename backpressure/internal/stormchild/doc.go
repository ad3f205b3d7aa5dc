// Command stormchild runs an allocation storm for the survival test of
// package backpressure: goroutines that each allocate and hold a block of
// memory, as many as admission allows. It is meant to run inside a cgroup
// with a memory limit.
//
//	stormchild -mode breaker   admit every goroutine through a Breaker whose
//	                           budget comes from the cgroup; exit 0
//	stormchild -mode raw       start every goroutine unasked (the control:
//	                           under a limit it should be killed)
//
// On success it prints one JSON line with what happened.
package main
