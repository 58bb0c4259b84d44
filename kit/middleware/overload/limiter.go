package overload

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// A Limiter bounds the number of calls that run at once: off, at a fixed
// limit, or at a limit it adapts from the calls' latency (see the package
// comment). It never queues: a call beyond the limit is refused at once.
//
// All methods are safe for concurrent use.
type Limiter struct {
	now func() time.Time // time source; tests replace it before any call

	cfg      atomic.Pointer[LimiterConfig]
	limit    atomic.Int64 // the enforced limit; 0 when the mode is off
	inFlight atomic.Int64
	refused  atomic.Int64 // calls refused, ever

	mu sync.Mutex // guards the fields below, and serializes SetConfig
	// epoch is when the current configuration took effect; samples of
	// calls that started before it are not used.
	epoch time.Time
	// estimate is the adaptive limit before rounding down.
	estimate float64
	// slowStart is true until the first window with congestion: until
	// then the estimate doubles in each window with headroom.
	slowStart bool
	// baseline is the long-term latency in seconds; baselineWindows is the
	// number of windows it has seen (0: none yet).
	baseline        float64
	baselineWindows int
	// The current sample window: its start, the sum and number of its
	// samples' latencies in seconds, and the most calls seen in flight.
	windowStart       time.Time
	windowSum         float64
	windowCount       int
	windowMaxInFlight int64
	// probing is true while a probe holds the limit at MinLimit; the
	// current window is then the probe's. lastProbe is when the last probe
	// ended (zero: none yet), refusedAtProbe the refusals counted then.
	probing        bool
	lastProbe      time.Time
	refusedAtProbe int64
}

// NewLimiter returns a Limiter for cfg, or the error of cfg.Validate.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Limiter{now: time.Now}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setConfigLocked(cfg, nil)
	return l, nil
}

// Config returns the current configuration.
func (l *Limiter) Config() LimiterConfig { return *l.cfg.Load() }

// SetConfig validates cfg as a whole and applies it, or returns the error
// and keeps the current configuration. Calls in flight stay counted. A
// change of mode restarts the adaptive estimate at InitialLimit; a change of
// adaptive parameters keeps the estimate, clamped to the new bounds, and
// the baseline.
func (l *Limiter) SetConfig(cfg LimiterConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setConfigLocked(cfg, l.cfg.Load())
	return nil
}

// setConfigLocked applies the valid cfg, which replaces old (nil at first).
func (l *Limiter) setConfigLocked(cfg LimiterConfig, old *LimiterConfig) {
	now := l.now()
	l.epoch = now
	l.resetWindowLocked(now)
	if old == nil || old.Mode != cfg.Mode {
		l.estimate = float64(cfg.InitialLimit)
		l.baseline, l.baselineWindows = 0, 0
		l.lastProbe, l.refusedAtProbe = time.Time{}, l.refused.Load()
		l.slowStart = true
	}
	l.probing = false
	l.estimate = min(max(l.estimate, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	l.cfg.Store(&cfg)
	switch cfg.Mode {
	case ModeOff:
		l.limit.Store(0)
	case ModeFixed:
		l.limit.Store(int64(cfg.FixedLimit))
	default:
		l.limit.Store(int64(l.estimate))
	}
}

// Limit returns the limit in force: the number of calls allowed at once, or
// 0 when the mode is off.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of calls allowed and not yet released.
func (l *Limiter) InFlight() int { return int(l.inFlight.Load()) }

// Refused returns the number of calls Acquire refused since the Limiter was
// made.
func (l *Limiter) Refused() int64 { return l.refused.Load() }

// noRelease is the release of a refused call.
func noRelease(bool) {}

// Acquire asks to start a call. When as many calls as the limit are in
// flight it returns allowed false at once and a release that does nothing.
// Otherwise the call counts as in flight until release is called; release
// measures the call's latency, and ok says whether that latency is a sample
// of the server's load (false for calls that failed for reasons of their
// own, such as a caller's cancellation). Calls of release after the first
// do nothing.
func (l *Limiter) Acquire() (release func(ok bool), allowed bool) {
	for {
		n, limit := l.inFlight.Load(), l.limit.Load()
		if limit > 0 && n >= limit {
			l.refused.Add(1)
			return noRelease, false
		}
		if l.inFlight.CompareAndSwap(n, n+1) {
			break
		}
	}
	start := l.now()
	var released atomic.Bool
	return func(ok bool) {
		if !released.CompareAndSwap(false, true) {
			return
		}
		n := l.inFlight.Add(-1) + 1
		if ok {
			l.sample(start, n)
		}
	}, true
}

// sample records the latency of a call that started at start and ended
// with inFlight calls in flight, itself included.
func (l *Limiter) sample(start time.Time, inFlight int64) {
	cfg := l.cfg.Load()
	if cfg.Mode != ModeAdaptive {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if start.Before(l.epoch) || l.cfg.Load() != cfg {
		return
	}
	l.windowSum += now.Sub(start).Seconds()
	l.windowCount++
	l.windowMaxInFlight = max(l.windowMaxInFlight, inFlight)
	switch {
	case l.probing:
		if l.windowCount >= cfg.MinSamples {
			l.endProbeLocked(now)
		}
	case now.Sub(l.windowStart) >= time.Duration(cfg.Window) && l.windowCount >= cfg.MinSamples:
		l.updateLocked(cfg)
		l.resetWindowLocked(now)
		l.maybeProbeLocked(cfg, now)
	}
}

// maybeProbeLocked starts a probe when calls were refused since the last
// one and ProbeInterval has passed since (any time before the first). A
// probe holds the limit at MinLimit until MinSamples calls that started
// after it have ended: their latency, with no queue in front of the
// server's resources, becomes the baseline. Without it, a limiter whose
// first windows are already overloaded would take the queueing delay for
// the server's normal latency and keep a limit that queues.
func (l *Limiter) maybeProbeLocked(cfg *LimiterConfig, now time.Time) {
	refused := l.refused.Load()
	if refused == l.refusedAtProbe {
		return
	}
	if !l.lastProbe.IsZero() && (cfg.ProbeInterval == 0 || now.Sub(l.lastProbe) < time.Duration(cfg.ProbeInterval)) {
		return
	}
	l.probing = true
	l.epoch = now // calls already in flight queued: not samples
	l.limit.Store(int64(cfg.MinLimit))
}

// endProbeLocked ends a probe: the probe window's latency becomes the
// baseline, and the limit is back to the estimate.
func (l *Limiter) endProbeLocked(now time.Time) {
	l.baseline = max(l.windowSum/float64(l.windowCount), minLatency)
	l.baselineWindows = max(l.baselineWindows, 1)
	l.probing = false
	l.lastProbe, l.refusedAtProbe = now, l.refused.Load()
	l.limit.Store(int64(l.estimate))
	l.resetWindowLocked(now)
}

func (l *Limiter) resetWindowLocked(now time.Time) {
	l.windowStart = now
	l.windowSum, l.windowCount, l.windowMaxInFlight = 0, 0, 0
}

// minLatency stands in for latencies too small to divide by (a manual
// clock may measure 0).
const minLatency = 1e-9

// updateLocked closes the current window: it updates the baseline and the
// estimate with gradient2's rule.
func (l *Limiter) updateLocked(cfg *LimiterConfig) {
	short := max(l.windowSum/float64(l.windowCount), minLatency)
	l.baselineWindows++
	// An exponential average over BaselineWindows windows. The first
	// window sets it; in the windows after, a lower latency is averaged
	// plainly so that a slow first window does not weigh for hundreds,
	// while a higher one only ever moves it slowly: a congestion early in
	// the limiter's life must not become its idea of normal.
	alpha := 2 / (float64(cfg.BaselineWindows) + 1)
	if short < l.baseline || l.baselineWindows == 1 {
		alpha = max(alpha, 1/float64(l.baselineWindows))
	}
	l.baseline += alpha * (short - l.baseline)
	// After a long congestion the baseline has risen; when latency falls
	// well below it, let it come down faster than the average would.
	if l.baseline/short > 2 {
		l.baseline *= 0.95
	}
	// A server that does not use half its limit says nothing of whether the
	// limit is too small: leave it.
	if float64(l.windowMaxInFlight) < l.estimate/2 {
		return
	}
	congested := short > cfg.Tolerance*l.baseline
	var next float64
	switch {
	case l.slowStart && !congested:
		next = 2 * l.estimate
	case !congested:
		next = l.estimate + math.Sqrt(l.estimate)*cfg.Smoothing
	default:
		// gradient2's rule: shrink in proportion to the excess latency,
		// at most by half, plus a queue of the square root of the
		// limit. A fall applies at once, so that a congestion is
		// relieved within a window or two.
		l.slowStart = false
		gradient := max(cfg.Tolerance*l.baseline/short, 0.5)
		next = l.estimate*gradient + math.Sqrt(l.estimate)
		if next > l.estimate {
			next = l.estimate*(1-cfg.Smoothing) + next*cfg.Smoothing
		}
	}
	l.estimate = min(max(next, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	l.limit.Store(int64(l.estimate))
}
