package consulq

import (
	"context"
	"math/rand/v2"
	"time"
)

// NextIndex returns the index for the next blocking query after an answer
// carrying index got, following Consul's rules: an index that goes backwards
// restarts the loop from 0 (a non-blocking query that fetches a fresh index),
// and an answer carrying 0, which Consul should never send, is treated as 1 so
// the loop keeps blocking instead of spinning.
func NextIndex(prev, got uint64) uint64 {
	switch {
	case got == 0:
		return 1
	case got < prev:
		return 0
	}
	return got
}

// IndexAfterError is the index of the first query after a failed one. The
// agent may have restarted meanwhile, and a restarted agent counts its
// indexes from the start again, so the index held before could block a
// query for its whole wait time; 1 answers at once with a fresh index
// (every real index is above it) and, unlike 0, is a blocking query that
// Consul's rules allow after an answer.
const IndexAfterError = 1

// QueryTimeout bounds one query: a non-blocking query gets answer, a
// blocking one wait plus Consul's jitter (wait/16) plus answer.
func QueryTimeout(blocking bool, wait, answer time.Duration) time.Duration {
	if !blocking {
		return answer
	}
	return wait + wait/16 + answer
}

// Backoff yields capped exponential delays with ±20% jitter. Not safe for
// concurrent use; each loop owns one.
type Backoff struct {
	Base, Max time.Duration
	n         int // failures since the last reset
}

// Next returns the delay after one more failure, within [0.8 Base, Max]
// (a Base of 0 counts as 10ms).
func (b *Backoff) Next() time.Duration {
	d := max(b.Base, 10*time.Millisecond)
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.n++
	// Uniform in [0.8d, 1.2d), capped at Max.
	return min(time.Duration(float64(d)*(0.8+0.4*rand.Float64())), max(b.Max, d*8/10))
}

// Reset starts the delays over from Base.
func (b *Backoff) Reset() { b.n = 0 }

// Sleep waits d or until ctx is done, whichever comes first, and returns
// ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
