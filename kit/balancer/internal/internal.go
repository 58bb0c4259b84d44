// Package internal holds the test hooks of package balancer. Tests set them
// and restore them with t.Cleanup; the balancer only reads them.
package internal

import "time"

// Clock is the time source of a balancer's control loop. Pick and Done never
// read it.
type Clock interface {
	Now() time.Time
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
