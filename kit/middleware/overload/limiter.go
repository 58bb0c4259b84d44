package overload

import (
	"math"
	"math/rand/v2"
	"slices"
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
	// probeSeats is the number of calls still to be admitted into the
	// probe in progress as its group (see maybeProbeLocked); 0 or less
	// when there is no probe or its group is complete.
	probeSeats atomic.Int64
	// deadline is when, in UnixNano of now(), the refusal path must look
	// at the limiter: a probe outlived its time, or a window had no
	// sample for long (every place held by streams or calls that do not
	// end). 0: never.
	deadline atomic.Int64

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
	// The current sample window: its start, its samples' latencies in
	// seconds (up to maxKept of them, a uniform sample of all), their
	// number, the most calls seen in flight, and the refusals counted when
	// it began.
	windowStart       time.Time
	windowKept        []float64
	windowCount       int
	windowMaxInFlight int64
	windowRefused     int64
	// probing is true while a probe holds the limit at MinLimit; the
	// current window then keeps the latencies of the probe's group.
	// lastProbe is when the last probe ended (zero: none yet).
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
// change of mode restarts the adaptive estimate at InitialLimit, or at the
// number of calls in flight when there are more; a change of adaptive
// parameters keeps the estimate, clamped to the new bounds, and the
// baseline.
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
	if old == nil || old.Mode != cfg.Mode {
		// The calls in flight were let through: a switch to adaptive must
		// not refuse every call until they end.
		l.estimate = max(float64(cfg.InitialLimit), float64(l.inFlight.Load()))
		l.baseline, l.baselineWindows = 0, 0
		l.lastProbe = time.Time{}
		l.slowStart = true
	}
	l.probing = false
	l.probeSeats.Store(0)
	l.deadline.Store(0)
	l.estimate = min(max(l.estimate, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	l.cfg.Store(&cfg)
	l.resetWindowLocked(now)
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
	t, allowed := l.acquire()
	if !allowed {
		return noRelease, false
	}
	var released atomic.Bool
	return func(ok bool) {
		if released.CompareAndSwap(false, true) {
			l.release(t, ok)
		}
	}, true
}

// ticket is an admitted call, for release: Acquire without its closure.
type ticket struct {
	start  time.Time
	member bool // of a probe's group
}

// acquire is Acquire's admission; the caller must call release exactly
// once when it is allowed.
func (l *Limiter) acquire() (ticket, bool) {
	for {
		n, limit := l.inFlight.Load(), l.limit.Load()
		if limit > 0 && n >= limit {
			l.refused.Add(1)
			if d := l.deadline.Load(); d != 0 && l.now().UnixNano() >= d {
				l.overdue()
			}
			return ticket{}, false
		}
		if l.inFlight.CompareAndSwap(n, n+1) {
			break
		}
	}
	// The first calls admitted into a probe are its group.
	member := l.probeSeats.Load() > 0 && l.probeSeats.Add(-1) >= 0
	return ticket{start: l.now(), member: member}, true
}

// release ends the call of t; see Acquire for ok.
func (l *Limiter) release(t ticket, ok bool) {
	n := l.inFlight.Add(-1) + 1
	if ok || t.member {
		l.sample(t.start, n, t.member)
	}
}

// sample records the latency of a call that started at start and ended
// with inFlight calls in flight, itself included; member says whether it
// was of a probe's group (whose calls count whatever their outcome, so
// that the probe ends).
func (l *Limiter) sample(start time.Time, inFlight int64, member bool) {
	cfg := l.cfg.Load()
	if cfg.Mode != ModeAdaptive {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if start.Before(l.epoch) || l.cfg.Load() != cfg || l.probing != member {
		return
	}
	l.keepLocked(now.Sub(start).Seconds())
	l.windowMaxInFlight = max(l.windowMaxInFlight, inFlight)
	switch {
	case l.probing:
		if l.windowCount >= cfg.MinSamples {
			l.endProbeLocked(cfg, now)
		}
	case l.windowCount >= cfg.MinSamples && (now.Sub(l.windowStart) >= time.Duration(cfg.Window) || l.urgentLocked(cfg)):
		l.closeWindowLocked(cfg, now)
	}
}

// urgentLocked reports whether the current window should close on its
// samples alone (a limit's worth), before Window: when it refused calls
// and the limit is in
// slow start (too low yet, or the server overloaded from its start) or far
// too high (the median latency past twice the tolerance): waiting then
// costs refused calls or queued ones.
func (l *Limiter) urgentLocked(cfg *LimiterConfig) bool {
	// A round of calls at least: the first to end did not wait behind
	// the others.
	if l.refused.Load() == l.windowRefused || float64(l.windowCount) < l.estimate {
		return false
	}
	if l.slowStart || l.baselineWindows == 0 {
		return true
	}
	return l.medianLocked() > 2*cfg.Tolerance*l.baseline
}

// closeWindowLocked ends the current window: a probe starts after a window
// with refusals when one is due (the probe will tell what the window
// cannot: whether its latency was queue), else the window updates the
// baseline and the limit.
func (l *Limiter) closeWindowLocked(cfg *LimiterConfig, now time.Time) {
	refused := l.refused.Load() > l.windowRefused
	if refused && l.probeDueLocked(cfg, now) {
		l.startProbeLocked(cfg, now)
		return
	}
	l.updateLocked(cfg)
	l.resetWindowLocked(now)
}

// overdue is called on a refusal once the deadline has passed: it ends a
// probe whose group did not end in time, or, when a window has had no
// sample for long while calls were refused, raises the limit blindly: every
// place is held by calls that give no sample (streams, calls that do not
// end), so latency cannot set the limit, and holding it would refuse
// every other call for as long as they last.
func (l *Limiter) overdue() {
	cfg := l.cfg.Load()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.deadline.Load(); d == 0 || now.UnixNano() < d || l.cfg.Load() != cfg {
		return // another call dealt with it
	}
	switch {
	case l.probing:
		l.endProbeLocked(cfg, now)
	case l.windowCount == 0 && cfg.Mode == ModeAdaptive:
		if l.slowStart {
			l.estimate *= 2
		} else {
			l.estimate += math.Sqrt(l.estimate)
		}
		l.estimate = min(l.estimate, float64(cfg.MaxLimit))
		l.limit.Store(int64(l.estimate))
		l.resetWindowLocked(now)
	default:
		l.deadline.Store(0) // samples are coming: the window closes on them
	}
}

// probeSpacingAtFloor is the least number of windows between two probes
// while the limit is near its floor.
const probeSpacingAtFloor = 5

// probeDueLocked reports whether a probe may start after a window with
// refusals: when none happened yet, when ProbeInterval has passed since the
// last one, or when the limit is near its floor (where a probe costs
// little) and a few windows have passed.
func (l *Limiter) probeDueLocked(cfg *LimiterConfig, now time.Time) bool {
	since := now.Sub(l.lastProbe)
	nearFloor := l.estimate < 2*float64(cfg.MinLimit) && since >= probeSpacingAtFloor*time.Duration(cfg.Window)
	periodic := cfg.ProbeInterval > 0 && since >= time.Duration(cfg.ProbeInterval)
	return l.lastProbe.IsZero() || periodic || nearFloor
}

// startProbeLocked starts a probe: the limit is held at MinLimit, and the
// first MinSamples calls admitted from now on are its group. When all of
// them have ended, their average latency, with no queue in front of the
// server's resources, becomes the baseline, and slow start begins again. A
// group rather than the first calls to end, for those are the fastest: a
// server whose calls vary (a fast method and a slow one) would get a
// baseline of its fast calls and a limit held at its floor. Without probes,
// a limiter whose first windows were already congested would take queueing
// for the server's normal latency and keep a limit that queues; and one
// whose server got slower for a reason of its own (a slower dependency)
// would take the slowness for queueing and keep the limit at its floor.
//
// The probe gives up after two windows plus four times MinSamples/MinLimit
// rounds of the baseline latency; calls of its group still out then count
// as lasting until then.
func (l *Limiter) startProbeLocked(cfg *LimiterConfig, now time.Time) {
	l.probing = true
	l.epoch = now // calls already in flight queued: not samples
	l.resetWindowLocked(now)
	rounds := math.Ceil(float64(cfg.MinSamples) / float64(cfg.MinLimit))
	giveUp := now.Add(2*time.Duration(cfg.Window) + time.Duration(4*rounds*l.baseline*float64(time.Second)))
	l.deadline.Store(giveUp.UnixNano())
	l.probeSeats.Store(int64(cfg.MinSamples))
	l.limit.Store(int64(cfg.MinLimit))
}

// endProbeLocked ends a probe: the group's average latency becomes the
// baseline (calls still out count as lasting until now; a probe none of
// whose calls was admitted leaves it), the limit is back to the estimate,
// and slow start begins again.
func (l *Limiter) endProbeLocked(cfg *LimiterConfig, now time.Time) {
	admitted := int64(cfg.MinSamples) - max(l.probeSeats.Swap(0), 0)
	for range admitted - int64(l.windowCount) {
		l.keepLocked(now.Sub(l.epoch).Seconds())
	}
	if l.windowCount > 0 {
		l.baseline = l.medianLocked()
		l.baselineWindows = max(l.baselineWindows, 1)
	}
	l.probing, l.slowStart = false, true
	l.lastProbe = now
	l.limit.Store(int64(l.estimate))
	l.resetWindowLocked(now)
}

// resetWindowLocked starts a window at now. Its deadline for the refusal
// path: two windows plus four times the baseline latency without a sample.
func (l *Limiter) resetWindowLocked(now time.Time) {
	l.windowStart = now
	l.windowKept, l.windowCount, l.windowMaxInFlight = l.windowKept[:0], 0, 0
	l.windowRefused = l.refused.Load()
	if cfg := l.cfg.Load(); cfg != nil && cfg.Mode == ModeAdaptive && !l.probing {
		l.deadline.Store(now.Add(2*time.Duration(cfg.Window) + time.Duration(4*l.baseline*float64(time.Second))).UnixNano())
	}
}

// maxKept bounds the latencies a window keeps to take their median.
const maxKept = 256

// keepLocked counts a sample of latency seconds in the window, and keeps
// it with reservoir sampling, so that the kept ones are a uniform sample
// of all.
func (l *Limiter) keepLocked(latency float64) {
	l.windowCount++
	if len(l.windowKept) < maxKept {
		l.windowKept = append(l.windowKept, latency)
	} else if i := rand.IntN(l.windowCount); i < maxKept {
		l.windowKept[i] = latency
	}
}

// medianLocked returns the median latency of the window's samples: the
// median, not the mean, so that a server whose calls vary (a fast method
// and a slow one) is judged by its typical call, while a queue, which
// every call waits in, still moves it.
func (l *Limiter) medianLocked() float64 {
	slices.Sort(l.windowKept)
	return max(l.windowKept[len(l.windowKept)/2], minLatency)
}

// minLatency stands in for latencies too small to divide by (a manual
// clock may measure 0).
const minLatency = 1e-9

// updateLocked closes the current window: it updates the baseline and the
// estimate with gradient2's rule.
func (l *Limiter) updateLocked(cfg *LimiterConfig) {
	short := l.medianLocked()
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
}
