package balancer

import (
	"time"

	"github.com/grpckit/grpckit/kit/balancer/internal"
)

// clock is the time source of the control loop, and of Pick and Done when
// they measure calls; tests use a manual one.
type clock = internal.Clock

type ticker = internal.Ticker

// newClock returns the clock of a new balancer: the real one, unless a test
// set internal.TestClock.
func newClock() clock {
	if internal.TestClock != nil {
		return internal.TestClock
	}
	return realClock{}
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// epoch is where realClock's Nanos count from.
var epoch = time.Now()

// Nanos reads the monotonic clock only (time.Since of a time carrying a
// monotonic reading does not read the wall clock).
func (realClock) Nanos() int64 { return int64(time.Since(epoch)) + 1 }

func (realClock) NewTicker(d time.Duration) ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }
