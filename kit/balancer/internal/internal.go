// Package internal holds the test hooks of package balancer. Tests set them
// and restore them with t.Cleanup; the balancer only reads them.
package internal

import "time"

// Clock is the time source of a balancer: its control loop reads Now and
// ticks; Pick and Done read Nanos, a monotonic reading in nanoseconds that
// is never zero, to measure calls.
type Clock interface {
	Now() time.Time
	Nanos() int64
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of *time.Ticker the control loop uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// TestClock, when not nil, is the clock of the kit_weighted balancers built
// from then on instead of the real one: end-to-end tests advance time and
// fire the ticks by hand.
var TestClock Clock
