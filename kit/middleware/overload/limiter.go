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
	// probeUntil is when the probe in progress ends at the latest, in
	// UnixNano of now(); 0 when there is none.
	probeUntil atomic.Int64

	mu sync.Mutex // guards the fields below, and serializes SetConfig
	// epoch is when the current configuration took effect; samples of
	// calls that started before it are not used.
	epoch time.Time
	// estimate is the adaptive limit before rounding down.
	estimate float64
	// slowStart is true until the first window whose latency makes the
	// limit fall: until then the estimate doubles in each window with
	// headroom.
	slowStart bool
	// baseline is the long-term latency in seconds; baselineWindows is the
	// number of windows it has seen (0: none yet).
	baseline        float64
	baselineWindows int
	// The current sample window: its start, the sum, number and least of
	// its samples' latencies in seconds, the most calls seen in flight,
	// and the refusals counted when it began.
	windowStart       time.Time
	windowSum         float64
	windowCount       int
	windowMin         float64
	windowMaxInFlight int64
	windowRefused     int64
	// probing is true while a probe holds the limit at MinLimit; the
	// current window is then the probe's. lastProbe is when the last probe
	// ended (zero: none yet).
	probing   bool
	lastProbe time.Time
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
		// The calls in flight were let through: a switch to adaptive must
		// not refuse every call until they end.
		l.estimate = max(float64(cfg.InitialLimit), float64(l.inFlight.Load()))
		l.baseline, l.baselineWindows = 0, 0
		l.lastProbe = time.Time{}
		l.slowStart = true
	}
	l.probing = false
	l.probeUntil.Store(0)
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
			if until := l.probeUntil.Load(); until != 0 && l.now().UnixNano() >= until {
				l.expireProbe()
			}
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
	latency := now.Sub(start).Seconds()
	l.windowSum += latency
	l.windowCount++
	if l.windowCount == 1 || latency < l.windowMin {
		l.windowMin = latency
	}
	l.windowMaxInFlight = max(l.windowMaxInFlight, inFlight)
	l.closeWindowLocked(cfg, now)
}

// closeWindowLocked ends the current window if it is complete: a probe's
// after MinSamples samples or two windows' time, another after Window and
// MinSamples samples.
func (l *Limiter) closeWindowLocked(cfg *LimiterConfig, now time.Time) {
	elapsed := now.Sub(l.windowStart)
	switch {
	case l.probing:
		if l.windowCount >= cfg.MinSamples || elapsed >= 2*time.Duration(cfg.Window) {
			l.endProbeLocked(now)
		}
	case elapsed >= time.Duration(cfg.Window) && l.windowCount >= cfg.MinSamples:
		refused := l.refused.Load() > l.windowRefused
		unsure := l.updateLocked(cfg)
		l.resetWindowLocked(now)
		if refused || unsure {
			l.maybeProbeLocked(cfg, now)
		}
	}
}

// probeSpacingAtFloor is the least number of windows between two probes
// while the limit is near its floor.
const probeSpacingAtFloor = 5

// maybeProbeLocked starts a probe after a window in which calls were
// refused, when none happened yet, ProbeInterval has passed since the last
// one, or the limit is near its floor (where a probe costs little) and a
// few windows have passed. A probe holds the limit at MinLimit until
// MinSamples calls that started after it have ended (or two windows'
// time): their latency, with no queue in front of the server's resources,
// becomes the baseline, and slow start begins again. Without it, a limiter
// whose first windows were already congested would take queueing for the
// server's normal latency and keep a limit that queues; and one whose
// server got slower for a reason of its own (a slower dependency) would
// take the slowness for queueing and keep the limit at its floor.
func (l *Limiter) maybeProbeLocked(cfg *LimiterConfig, now time.Time) {
	since := now.Sub(l.lastProbe)
	nearFloor := l.estimate < 2*float64(cfg.MinLimit) && since >= probeSpacingAtFloor*time.Duration(cfg.Window)
	periodic := cfg.ProbeInterval > 0 && since >= time.Duration(cfg.ProbeInterval)
	if !l.lastProbe.IsZero() && !periodic && !nearFloor {
		return
	}
	l.probing = true
	l.epoch = now // calls already in flight queued: not samples
	l.limit.Store(int64(cfg.MinLimit))
	l.probeUntil.Store(now.Add(2 * time.Duration(cfg.Window)).UnixNano())
}

// expireProbe ends a probe that outlived its time: calls that started
// before it still hold every place (long calls), so no sample comes.
func (l *Limiter) expireProbe() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.probing {
		l.endProbeLocked(l.now())
	}
}

// endProbeLocked ends a probe: the probe window's latency becomes the
// baseline (a probe without samples leaves it), the limit is back to the
// estimate, and slow start begins again.
func (l *Limiter) endProbeLocked(now time.Time) {
	if l.windowCount > 0 {
		l.baseline = max(l.windowSum/float64(l.windowCount), minLatency)
		l.baselineWindows = max(l.baselineWindows, 1)
	}
	l.probing, l.slowStart = false, true
	l.probeUntil.Store(0)
	l.lastProbe = now
	l.limit.Store(int64(l.estimate))
	l.resetWindowLocked(now)
}

// resetWindowLocked starts a window at now.
func (l *Limiter) resetWindowLocked(now time.Time) {
	l.windowStart = now
	l.windowSum, l.windowCount, l.windowMin, l.windowMaxInFlight = 0, 0, 0, 0
	l.windowRefused = l.refused.Load()
}

// minLatency stands in for latencies too small to divide by (a manual
// clock may measure 0).
const minLatency = 1e-9

// updateLocked closes the current window: it updates the baseline and the
// estimate with gradient2's rule. It returns true when the window cannot
// tell a queue from the server's own latency: the first window, when its
// calls were much slower than its fastest one.
func (l *Limiter) updateLocked(cfg *LimiterConfig) (unsure bool) {
	short := max(l.windowSum/float64(l.windowCount), minLatency)
	l.baselineWindows++
	if l.baselineWindows == 1 {
		// A server started under load queues from its first calls on, so
		// the first window's average may be mostly queue; its fastest
		// call is the latency without one, or the spread of a server
		// whose calls vary. A probe tells which; meanwhile nothing moves.
		l.baseline = max(l.windowMin, minLatency)
		if short > cfg.Tolerance*l.baseline && float64(l.windowMaxInFlight) >= l.estimate/2 {
			return true
		}
		l.baseline = short
	}
	// An exponential average over BaselineWindows windows. The first
	// window sets it; in the windows after, a lower latency is averaged
	// plainly so that a slow first window does not weigh for hundreds,
	// while a higher one only ever moves it slowly: a congestion early in
	// the limiter's life must not become its idea of normal.
	alpha := 2 / (float64(cfg.BaselineWindows) + 1)
	if short < l.baseline {
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
		return false
	}
	var next float64
	if short <= cfg.Tolerance*l.baseline { // headroom
		if l.slowStart {
			next = 2 * l.estimate
		} else {
			next = l.estimate + math.Sqrt(l.estimate)*cfg.Smoothing
		}
	} else {
		// gradient2's rule: shrink in proportion to the excess latency,
		// at most by half, plus a queue of the square root of the
		// limit. A fall applies at once, so that a congestion is
		// relieved within a window or two, and ends slow start; a
		// congestion too mild to make the limit fall (noise, with a
		// small limit) holds it during slow start and rises smoothed
		// after.
		gradient := max(cfg.Tolerance*l.baseline/short, 0.5)
		next = l.estimate*gradient + math.Sqrt(l.estimate)
		switch {
		case next < l.estimate:
			l.slowStart = false
		case l.slowStart:
			next = l.estimate
		default:
			next = l.estimate*(1-cfg.Smoothing) + next*cfg.Smoothing
		}
	}
	l.estimate = min(max(next, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	l.limit.Store(int64(l.estimate))
	return false
}
