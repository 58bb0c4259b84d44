package balancer

import (
	"time"

	"github.com/grpckit/grpckit/kit/balancer/internal"
)

// clock is the time source of the control loop; tests use a manual one.
// Pick and Done never read it.
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

func (realClock) NewTicker(d time.Duration) ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }
