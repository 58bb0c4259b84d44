package kittest

import (
	"testing"
	"time"
)

// waitTimeout bounds [WaitFor].
const waitTimeout = 10 * time.Second

// WaitFor calls cond every millisecond until it returns true, and fails the
// test, naming what it waited for, when 10 seconds pass first. cond runs on
// the test's goroutine.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("kittest: timed out after %v waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}
