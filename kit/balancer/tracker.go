package balancer

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
)

// epState is where an endpoint is in its ejection cycle ([EndpointState]).
type epState uint8

const (
	stateActive  epState = iota // picked by weight
	stateEjected                // not picked until its ejection time passed and it is READY
	stateRamping                // re-admitted, weight ramping up (slow start)
)

// name returns the state's name.
func (s epState) name() EndpointState {
	return [...]EndpointState{StateActive, StateEjected, StateRamping}[s]
}

func (s epState) String() string { return string(s.name()) }

// counts are the outcomes of one tick.
type counts struct{ success, failure, demote, ignored int64 }

// endpoint is the balancer's record of one endpoint. The atomics are the hot
// path's; the other fields are guarded by tracker.mu.
//
// Its first 64 bytes are what Pick reads of a candidate and what every Pick
// and Done that land on it write, and nothing else: allocated at a multiple
// of 64 bytes (its size is one, see TestEndpointLayout), they are one cache
// line.
type endpoint struct {
	marked atomic.Bool // ejected, or marked for ejection by Done: Pick skips it
	load   load
	_      [64 - 8 - unsafe.Sizeof(load{})]byte

	// Read by every Pick and Done that land on the endpoint.
	t    *tracker
	name string                  // addresses, for logs and stats
	done func(balancer.DoneInfo) // ep.record of a call without a record, allocated once
	_    [64 - 8 - 16 - 8]byte

	out         outcomes     // running totals, written by failures and cancels: own cache line
	consecutive atomic.Int32 // failures in a row

	// Guarded by tracker.mu.
	base         uint32          // weight from the resolver attribute
	ready        bool            // the pick_first child is READY
	picker       balancer.Picker // the child's picker while READY
	state        epState
	multiplier   float64  // demotion factor in [MinMultiplier, 1]
	window       []counts // ring of the last windowBuckets ticks
	pos          int      // next slot of window
	seen         counts   // outcome totals at the last tick
	seenEnded    uint32   // calls ended (load.ends) at the last tick
	calls        int64    // calls ended before the last tick, since the endpoint was made
	deficit      int64    // outcomes counted before their calls' ends, to absorb in later ticks
	cleanTicks   int      // ticks in a row without failures, not counting ticks spent ejected
	timesEjected int
	ejections    int64 // times ejected since the endpoint was made
	demotions    int64 // times demoted since the endpoint was made
	atLimit      bool  // "not ejected: ejection limit reached" was logged; cleared by a clean tick or an ejection
	ejectedUntil time.Time
	rampStart    time.Time
	forgetAt     time.Time // for a removed endpoint: when its state is dropped
	_            [endpointPad]byte
}

// endpointPad makes the size of endpoint a multiple of 64 bytes on 64-bit
// platforms (TestEndpointLayout).
const endpointPad = 8

// logEvent is a log line recorded under tracker.mu and written after it.
type logEvent struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
}

// tracker applies kit_weighted's rules to a set of endpoints and publishes
// snapshots for the picker. Its methods lock mu; the hot path (picker.Pick,
// endpoint.record) only touches atomics.
type tracker struct {
	clock  clock
	target string
	events *Events

	snap    atomic.Pointer[snapshot]
	ejectCh chan struct{} // Done asks the control loop to eject marked endpoints
	calls   sync.Pool     // of *call, the records of calls picked under when_silent

	// next is the pick counter, written by every Pick: on a cache line of
	// its own, so that it does not evict snap from the other cores. now is
	// the clock at the last measured pick: the time probes are judged by.
	// typical is the weighted median of the latency estimates, as of the
	// last tick (math.Float64bits).
	_       [64]byte
	next    atomic.Uint64
	now     atomic.Int64
	typical atomic.Uint64
	_       [40]byte

	mu       sync.Mutex
	logger   *slog.Logger                     // guarded by mu
	cfg      *Config                          // guarded by mu
	eps      *resolver.EndpointMap[*endpoint] // current endpoints; guarded by mu
	order    []*endpoint                      // current endpoints in resolver order; guarded by mu
	retired  *resolver.EndpointMap[*endpoint] // removed endpoints whose state is kept a while; guarded by mu
	panic    bool                             // guarded by mu
	failover *failover                        // the target's datacenters, nil if none; guarded by mu
	fallback balancer.Picker                  // endpointsharding's picker; guarded by mu
	dirty    bool                             // snapshot out of date; guarded by mu
	logs     []logEvent                       // written by unlock; guarded by mu
}

func newTracker(cfg *Config, c clock, logger *slog.Logger, target string, events *Events) *tracker {
	t := &tracker{
		clock: c, logger: logger, target: target, events: events,
		ejectCh:  make(chan struct{}, 1),
		cfg:      cfg,
		eps:      resolver.NewEndpointMap[*endpoint](),
		retired:  resolver.NewEndpointMap[*endpoint](),
		fallback: errPicker{balancer.ErrNoSubConnAvailable},
	}
	t.calls.New = func() any {
		c := new(call)
		c.done = c.finish
		return c
	}
	t.snap.Store(&snapshot{cfg: cfg, fallback: t.fallback})
	return t
}

// unlock releases mu, then writes the log lines recorded under it, so a slow
// log handler never holds up picks' snapshots or grpc's state updates.
func (t *tracker) unlock() {
	logs, logger := t.logs, t.logger
	t.logs = nil
	t.mu.Unlock()
	for _, l := range logs {
		logger.LogAttrs(context.Background(), l.level, l.msg, l.attrs...)
	}
}

// setLogger makes l the logger of the events from now on.
func (t *tracker) setLogger(l *slog.Logger) {
	t.mu.Lock()
	defer t.unlock()
	t.logger = l
}

func (t *tracker) logLocked(level slog.Level, msg string, ep *endpoint, attrs ...slog.Attr) {
	attrs = append([]slog.Attr{slog.String("target", t.target)}, attrs...)
	if ep != nil {
		attrs = append(attrs, slog.String("endpoint", ep.name))
	}
	t.logs = append(t.logs, logEvent{level, "kit_weighted: " + msg, attrs})
}

// run is the control loop: it ticks the window once per bucket and ejects
// endpoints that Done marked, until ctx is done.
func (t *tracker) run(ctx context.Context) {
	t.mu.Lock()
	period := time.Duration(t.cfg.Bucket)
	t.mu.Unlock()
	tk := t.clock.NewTicker(period)
	defer func() { tk.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
			if p := t.tick(); p != period { // the bucket changed with the config
				tk.Stop()
				tk, period = t.clock.NewTicker(p), p
			}
		case <-t.ejectCh:
			t.ejectMarked()
		}
	}
}

// setConfig applies a new configuration. A different window size restarts
// every endpoint's window.
func (t *tracker) setConfig(cfg *Config) {
	t.mu.Lock()
	defer t.unlock()
	if cfg.windowBuckets() != t.cfg.windowBuckets() {
		for _, ep := range t.order {
			ep.window, ep.pos = make([]counts, cfg.windowBuckets()), 0
		}
	}
	t.cfg = cfg
	for _, ep := range t.order {
		ep.multiplier = max(ep.multiplier, cfg.MinMultiplier)
	}
	t.enforceLimitLocked(t.clock.Now())
	t.dirty = true
	t.publishLocked()
}

// setEndpoints tracks exactly eps. Known endpoints keep their state; an
// endpoint that comes back soon after it was removed gets its old state back
// (a flapping instance keeps its ejection and its back-off).
func (t *tracker) setEndpoints(eps []resolver.Endpoint) {
	t.mu.Lock()
	defer t.unlock()
	now := t.clock.Now()
	next := resolver.NewEndpointMap[*endpoint]()
	order := make([]*endpoint, 0, len(eps))
	for _, e := range eps {
		if _, dup := next.Get(e); dup {
			continue
		}
		ep, ok := t.eps.Get(e)
		if !ok {
			if ep, ok = t.retired.Get(e); ok {
				t.retired.Delete(e)
				ep.window, ep.pos = make([]counts, t.cfg.windowBuckets()), 0
			} else {
				ep = t.newEndpoint(e)
			}
		}
		ep.base = max(weight.FromEndpoint(e).Weight, 1)
		next.Set(e, ep)
		order = append(order, ep)
	}
	for e, ep := range t.eps.All() {
		if _, kept := next.Get(e); kept {
			continue
		}
		ep.ready, ep.picker = false, nil
		if ep.state != stateActive || ep.multiplier < 1 || ep.timesEjected > 0 {
			ep.forgetAt = later(ep.ejectedUntil, now).Add(time.Duration(t.cfg.Window))
			t.retired.Set(e, ep)
		}
	}
	t.eps, t.order, t.dirty = next, order, true
	t.enforceLimitLocked(now)
	t.publishLocked()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (t *tracker) newEndpoint(e resolver.Endpoint) *endpoint {
	names := make([]string, len(e.Addresses))
	for i, a := range e.Addresses {
		names[i] = a.Addr
	}
	ep := &endpoint{t: t, name: strings.Join(names, ","), multiplier: 1, window: make([]counts, t.cfg.windowBuckets())}
	ep.done = func(di balancer.DoneInfo) { ep.record(di, noRecord, 0) }
	return ep
}

// setChildStates records which endpoints are READY, with their pickers, and
// the endpointsharding picker to use when none is.
func (t *tracker) setChildStates(states []endpointsharding.ChildState, fallback balancer.Picker) {
	t.mu.Lock()
	defer t.unlock()
	for _, ep := range t.order {
		ep.ready, ep.picker = false, nil
	}
	for _, cs := range states {
		ep, ok := t.eps.Get(cs.Endpoint)
		if !ok || cs.State.ConnectivityState != connectivity.Ready {
			continue
		}
		ep.ready, ep.picker = true, cs.State.Picker
	}
	t.fallback, t.dirty = fallback, true
	t.publishLocked()
}

// hasEndpoints reports whether the resolver gave any endpoint.
func (t *tracker) hasEndpoints() bool {
	t.mu.Lock()
	defer t.unlock()
	return len(t.order) > 0
}

// tick closes the current bucket of every endpoint and applies the rules:
// demotion and restoration, ratio ejection, re-admission, slow start and the
// decay of the ejection count. It returns the bucket length now configured.
func (t *tracker) tick() time.Duration {
	t.mu.Lock()
	defer t.unlock()
	now := t.clock.Now()
	cfg := t.cfg
	for e, ep := range t.retired.All() {
		if !now.Before(ep.forgetAt) {
			t.retired.Delete(e)
		}
	}
	for _, ep := range t.order {
		c := t.closeBucketLocked(ep)
		switch ep.state {
		case stateEjected:
			if !now.Before(ep.ejectedUntil) && ep.ready {
				t.readmitLocked(ep, now)
			}
			continue
		case stateRamping:
			if c.failure > 0 {
				if t.canEjectLocked() {
					t.ejectLocked(ep, now, "failed during slow start")
				} else {
					// At the ejection limit: demote and start the ramp over.
					ep.multiplier = max(ep.multiplier/2, cfg.MinMultiplier)
					ep.rampStart = now
					t.logLocked(slog.LevelInfo, "endpoint failed during slow start; ejection limit reached, ramp restarted", ep)
					t.dirty = true
				}
				continue
			}
			if now.Sub(ep.rampStart) >= time.Duration(cfg.SlowStart) {
				ep.state = stateActive
			}
			t.dirty = true // the ramp moved on
		}
		if c.failure == 0 {
			ep.cleanTicks++
			ep.atLimit = false
		} else {
			ep.cleanTicks = 0
		}
		t.demoteOrRestoreLocked(ep, c)
		if ep.marked.Load() {
			t.ejectOrUnmarkLocked(ep, now)
			continue
		}
		var sum counts
		for _, w := range ep.window {
			sum.success += w.success
			sum.failure += w.failure
			sum.demote += w.demote
		}
		total := sum.success + sum.failure + sum.demote
		if total >= int64(cfg.MinRequests) && float64(sum.failure) >= cfg.FailureRatio*float64(total) && t.canEjectLocked() {
			t.ejectLocked(ep, now, "failure ratio")
			continue
		}
		if ep.timesEjected > 0 && ep.cleanTicks >= len(ep.window) {
			ep.timesEjected--
			ep.cleanTicks = 0
		}
	}
	t.publishLocked()
	t.typical.Store(math.Float64bits(t.typicalLatency()))
	return time.Duration(cfg.Bucket)
}

// typicalLatency returns the weighted median of the latency estimates of
// the endpoints in the current snapshot (0 when none is measured): half of
// the picks go to endpoints at most this slow.
func (t *tracker) typicalLatency() float64 {
	s := t.snap.Load()
	type est struct{ latency, weight float64 }
	ests := make([]est, 0, len(s.entries))
	var total float64
	for _, e := range s.entries {
		if l, measured := e.ep.load.estimate(); measured != 0 {
			w := 1 / e.perCall // the weight relative to the mean
			ests = append(ests, est{l, w})
			total += w
		}
	}
	slices.SortFunc(ests, func(a, b est) int { return cmp.Compare(a.latency, b.latency) })
	var sum float64
	for _, e := range ests {
		if sum += e.weight; sum >= total/2 {
			return e.latency
		}
	}
	return 0
}

// closeBucketLocked turns the calls that ended since the last tick into
// this tick's counts, and stores them in the window.
func (t *tracker) closeBucketLocked(ep *endpoint) counts {
	// Done counts a call's outcome before its end, and ended is read first
	// here, so every call in ended has its outcome counted; outcomes of
	// calls ending at this moment may be counted without their end: that
	// deficit is carried to the next ticks.
	ended := uint32(ep.load.ends.Load())
	total := counts{failure: ep.out.failure.Load(), demote: ep.out.demote.Load(), ignored: ep.out.ignored.Load()}
	c := counts{failure: total.failure - ep.seen.failure, demote: total.demote - ep.seen.demote, ignored: total.ignored - ep.seen.ignored}
	ep.seen = total
	// Calls that ended otherwise were successes (application errors
	// included: the endpoint answered).
	c.success = int64(ended-ep.seenEnded) - c.failure - c.demote - c.ignored - ep.deficit
	ep.calls += int64(ended - ep.seenEnded)
	ep.seenEnded, ep.deficit = ended, 0
	if c.success < 0 {
		ep.deficit, c.success = -c.success, 0
	}
	ep.window[ep.pos] = c
	ep.pos = (ep.pos + 1) % len(ep.window)
	return c
}

// demoteOrRestoreLocked halves the multiplier after a tick with failures
// (once per tick, never below the floor) and doubles it back after a clean
// tick with successes.
func (t *tracker) demoteOrRestoreLocked(ep *endpoint, c counts) {
	switch {
	case c.failure+c.demote > 0 && ep.multiplier > t.cfg.MinMultiplier:
		ep.multiplier = max(ep.multiplier/2, t.cfg.MinMultiplier)
		ep.demotions++
		t.events.Demotions.Add(1)
		t.logLocked(slog.LevelInfo, "endpoint demoted", ep,
			slog.Float64("multiplier", ep.multiplier), slog.Int64("failures", c.failure+c.demote))
		t.dirty = true
	case c.failure+c.demote == 0 && c.success > 0 && ep.multiplier < 1:
		ep.multiplier = min(ep.multiplier*2, 1)
		t.events.Restorations.Add(1)
		t.logLocked(slog.LevelDebug, "endpoint restored", ep, slog.Float64("multiplier", ep.multiplier))
		t.dirty = true
	}
}

// ejectMarked ejects the endpoints Done marked (consecutive failures), as
// far as the ejection limit allows.
func (t *tracker) ejectMarked() {
	t.mu.Lock()
	defer t.unlock()
	now := t.clock.Now()
	for _, ep := range t.order {
		if ep.state != stateEjected && ep.marked.Load() {
			t.ejectOrUnmarkLocked(ep, now)
		}
	}
	t.publishLocked()
}

// ejectOrUnmarkLocked ejects a marked endpoint, or, at the ejection limit,
// clears the mark so that it is picked again (it stays demoted).
func (t *tracker) ejectOrUnmarkLocked(ep *endpoint, now time.Time) {
	if t.canEjectLocked() {
		t.ejectLocked(ep, now, "consecutive failures")
		return
	}
	ep.marked.Store(false)
	ep.consecutive.Store(0)
	if !ep.atLimit { // once per spell of failures, not once per ConsecutiveFailures calls
		ep.atLimit = true
		t.logLocked(slog.LevelInfo, "endpoint not ejected: ejection limit reached", ep)
	}
	t.dirty = true
}

// maxEjectedLocked is how many endpoints may be ejected at once: the
// configured share, never all of them.
func (t *tracker) maxEjectedLocked() int {
	n := len(t.order)
	return max(min(n*t.cfg.MaxEjectionPercent/100, n-1), 0)
}

func (t *tracker) ejectedLocked() []*endpoint {
	var out []*endpoint
	for _, ep := range t.order {
		if ep.state == stateEjected {
			out = append(out, ep)
		}
	}
	return out
}

func (t *tracker) canEjectLocked() bool { return len(t.ejectedLocked()) < t.maxEjectedLocked() }

// enforceLimitLocked re-admits ejected endpoints, soonest due first, while
// more are ejected than the limit allows (after the endpoint set shrank or
// the limit was lowered).
func (t *tracker) enforceLimitLocked(now time.Time) {
	ejected := t.ejectedLocked()
	over := len(ejected) - t.maxEjectedLocked()
	if over <= 0 {
		return
	}
	slices.SortFunc(ejected, func(a, b *endpoint) int { return a.ejectedUntil.Compare(b.ejectedUntil) })
	for _, ep := range ejected[:over] {
		t.readmitLocked(ep, now)
	}
}

// ejectLocked ejects ep for BaseEjectionTime x times ejected, with jitter,
// capped at MaxEjectionTime.
func (t *tracker) ejectLocked(ep *endpoint, now time.Time, reason string) {
	cfg := t.cfg
	ep.timesEjected++
	ep.ejections++
	d := time.Duration(cfg.BaseEjectionTime) * time.Duration(ep.timesEjected)
	d = time.Duration(float64(d) * (1 + cfg.EjectionJitter*(2*rand.Float64()-1)))
	d = min(d, time.Duration(cfg.MaxEjectionTime))
	ep.state, ep.ejectedUntil, ep.cleanTicks, ep.atLimit = stateEjected, now.Add(d), 0, false
	ep.marked.Store(true)
	t.events.Ejections.Add(1)
	t.logLocked(slog.LevelWarn, "endpoint ejected", ep, slog.String("reason", reason),
		slog.Duration("for", d), slog.Int("times", ep.timesEjected))
	t.dirty = true
}

// readmitLocked lets an ejected endpoint back in, ramping its weight up.
func (t *tracker) readmitLocked(ep *endpoint, now time.Time) {
	ep.state, ep.rampStart, ep.multiplier, ep.cleanTicks = stateRamping, now, 1, 0
	if t.cfg.SlowStart == 0 {
		ep.state = stateActive
	}
	clear(ep.window) // old failures must not eject it again
	ep.consecutive.Store(0)
	ep.marked.Store(false)
	t.events.Readmissions.Add(1)
	t.logLocked(slog.LevelInfo, "endpoint re-admitted", ep, slog.Int("times_ejected", ep.timesEjected))
	t.dirty = true
}

// effectiveWeightLocked is base x multiplier x ramp factor.
func (t *tracker) effectiveWeightLocked(ep *endpoint, now time.Time) float64 {
	w := float64(ep.base) * ep.multiplier
	if ep.state == stateRamping && t.cfg.SlowStart > 0 {
		f := float64(now.Sub(ep.rampStart)) / float64(t.cfg.SlowStart)
		initial := t.cfg.SlowStartInitial
		w *= min(1, initial+(1-initial)*max(f, 0))
	}
	return w
}

// publishLocked builds and publishes a snapshot when something changed.
func (t *tracker) publishLocked() {
	if !t.dirty {
		return
	}
	t.dirty = false
	now := t.clock.Now()
	var ready, usable []*endpoint
	for _, ep := range t.order {
		if !ep.ready {
			continue
		}
		ready = append(ready, ep)
		if ep.state != stateEjected && !ep.marked.Load() {
			usable = append(usable, ep)
		}
	}
	panicking := len(ready) > 0 && len(usable)*100 < t.cfg.PanicThreshold*len(ready)
	if panicking != t.panic {
		t.panic = panicking
		if panicking {
			t.events.Panics.Add(1)
			t.logLocked(slog.LevelWarn, "panic mode: too few usable endpoints, routing over every READY one", nil,
				slog.Int("ready", len(ready)), slog.Int("usable", len(usable)))
		} else {
			t.logLocked(slog.LevelInfo, "panic mode over", nil, slog.Int("ready", len(ready)), slog.Int("usable", len(usable)))
		}
	}
	pick := usable
	if panicking {
		pick = ready
	}
	s := &snapshot{cfg: t.cfg, panic: panicking, fallback: t.fallback}
	if len(pick) > 0 {
		weights := make([]float64, len(pick))
		var sum float64
		for i, ep := range pick {
			weights[i] = t.effectiveWeightLocked(ep, now)
			sum += weights[i]
		}
		mean := sum / float64(len(pick))
		s.entries = make([]entry, len(pick))
		for i, ep := range pick {
			s.entries[i] = entry{ep: ep, picker: ep.picker, perCall: mean / weights[i]}
		}
		s.table = schedule(weights)
	}
	t.snap.Store(s)
}

// errPicker fails every pick with err.
type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
