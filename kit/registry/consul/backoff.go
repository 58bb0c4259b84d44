package consul

import (
	"math/rand/v2"
	"time"
)

// backoff yields capped exponential delays with ±20% jitter. Not safe for
// concurrent use; each loop owns one.
type backoff struct {
	base, max time.Duration
	n         int // failures since the last reset
}

func (b *backoff) next() time.Duration {
	d := b.base
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	// Uniform in [0.8d, 1.2d).
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (b *backoff) reset() { b.n = 0 }
