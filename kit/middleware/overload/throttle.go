package overload

import (
	"math/rand/v2"
	"sync"
	"time"
)

// A Throttle sheds a client's calls to one target locally when the target
// accepts fewer than it is asked for (Google SRE adaptive throttling, made
// fair between clients; see the package comment). Ask [Throttle.Allow]
// before each call and tell [Throttle.Record] whether the target accepted
// it.
//
// All methods are safe for concurrent use.
type Throttle struct {
	now  func() time.Time // time source; tests replace it before any call
	rand func() float64   // uniform in [0, 1), called with mu held; tests replace it
	// origin is the time buckets are counted from: a monotonic reading,
	// so that a step of the wall clock neither empties nor merges them.
	origin time.Time

	mu      sync.Mutex // guards the fields below
	cfg     ThrottleConfig
	width   int64 // bucket width in nanoseconds
	buckets [numBuckets]bucket
}

// bucket counts one slice of the window.
type bucket struct {
	index    int64 // (time − origin) / width of the slice counted; 0 for none
	requests int64
	ended    int64 // calls sent whose outcome Record counted
	accepts  int64
}

// NewThrottle returns a Throttle for cfg, or the error of cfg.Validate.
func NewThrottle(cfg ThrottleConfig) (*Throttle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Throttle{now: time.Now, rand: rand.Float64}
	t.setConfigLocked(cfg)
	return t, nil
}

// Config returns the current configuration.
func (t *Throttle) Config() ThrottleConfig {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cfg
}

// SetConfig validates cfg as a whole and applies it, or returns the error
// and keeps the current configuration. A change of Window forgets the
// counts; other changes keep them.
func (t *Throttle) SetConfig(cfg ThrottleConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setConfigLocked(cfg)
	return nil
}

func (t *Throttle) setConfigLocked(cfg ThrottleConfig) {
	if cfg.Window != t.cfg.Window {
		t.width = max(int64(cfg.Window)/numBuckets, 1)
		t.buckets = [numBuckets]bucket{}
	}
	t.cfg = cfg
}

// Allow counts a request and reports whether to send it: false means refuse
// the call locally, with the probability [Throttle.Probability] gives.
func (t *Throttle) Allow() bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.currentLocked(now).requests++
	p := t.probabilityLocked(now)
	return p <= 0 || t.rand() >= p
}

// Record counts the outcome of a call that Allow let through: accepted
// false when the target refused it for want of capacity (or did not answer
// in time), true for any answer that shows the target served it.
func (t *Throttle) Record(accepted bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.currentLocked(now)
	b.ended++
	if accepted {
		b.accepts++
	}
}

// Probability returns the probability with which the next call would be
// refused: max(0, (requests − K·requests·accepts/ended) / (requests + 1))
// over the window, where accepts/ended is the accept ratio of the calls
// that ended; 0 while the window holds fewer than MinRequests requests or
// no call that ended.
func (t *Throttle) Probability() float64 {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.probabilityLocked(now)
}

// Counts returns the requests, the calls that ended (sent, and counted by
// Record) and the accepts in the window.
func (t *Throttle) Counts() (requests, ended, accepts int64) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.countsLocked(now)
}

func (t *Throttle) index(now time.Time) int64 {
	if t.origin.IsZero() {
		t.origin = now.Add(-time.Duration(numBuckets * t.width)) // every index positive
	}
	return int64(now.Sub(t.origin)) / t.width
}

// currentLocked returns the bucket of now, emptied if it held an older slice.
func (t *Throttle) currentLocked(now time.Time) *bucket {
	i := t.index(now)
	b := &t.buckets[uint64(i)%numBuckets]
	if b.index != i {
		*b = bucket{index: i}
	}
	return b
}

func (t *Throttle) countsLocked(now time.Time) (requests, ended, accepts int64) {
	i := t.index(now)
	for _, b := range t.buckets {
		if b.index > i-numBuckets && b.index <= i {
			requests += b.requests
			ended += b.ended
			accepts += b.accepts
		}
	}
	return requests, ended, accepts
}

func (t *Throttle) probabilityLocked(now time.Time) float64 {
	requests, ended, accepts := t.countsLocked(now)
	if requests < int64(t.cfg.MinRequests) || ended == 0 {
		return 0
	}
	r := float64(requests)
	scaled := r * float64(accepts) / float64(ended) // accepts had every request been sent and ended
	return max(0, (r-t.cfg.K*scaled)/(r+1))
}
