package balancer

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
)

// epState is where an endpoint is in its ejection cycle.
type epState uint8

const (
	stateActive  epState = iota // picked by weight
	stateEjected                // not picked until its ejection time passed and it is READY
	stateRamping                // re-admitted, weight ramping up (slow start)
)

func (s epState) String() string {
	return [...]string{"active", "ejected", "ramping"}[s]
}

// counts are the outcomes of one tick.
type counts struct{ success, failure, demote int64 }

// endpoint is the balancer's record of one endpoint. The atomics are the hot
// path's; the other fields are guarded by tracker.mu.
type endpoint struct {
	t    *tracker
	name string                  // addresses, for logs and stats
	done func(balancer.DoneInfo) // ep.record, allocated once

	cur         atomic.Pointer[bucket]
	consecutive atomic.Int32
	ejecting    atomic.Bool // ejected or marked for ejection: Pick skips it

	// Guarded by tracker.mu.
	base         uint32          // weight from the resolver attribute
	ready        bool            // the pick_first child is READY
	picker       balancer.Picker // the child's picker while READY
	state        epState
	multiplier   float64  // demotion factor in [MinMultiplier, 1]
	window       []counts // ring of the last windowBuckets ticks
	pos          int      // next slot of window
	cleanTicks   int      // ticks in a row without failures
	picks        float64  // picks derived since the last tick
	timesEjected int
	ejectedUntil time.Time
	rampStart    time.Time
}

// tracker applies kit_weighted's rules to a set of endpoints and publishes
// snapshots for the picker. Its methods lock mu; the hot path (picker.Pick,
// endpoint.record) only touches atomics.
type tracker struct {
	clock  clock
	logger *slog.Logger
	target string
	events *Events

	snap    atomic.Pointer[snapshot]
	ejectCh chan struct{} // Done asks the control loop to eject marked endpoints

	// next is the pick counter, written by every Pick: on a cache line of
	// its own, so that it does not evict snap from the other cores.
	_    [64]byte
	next atomic.Uint64
	_    [56]byte

	mu       sync.Mutex
	cfg      *Config                          // guarded by mu
	eps      *resolver.EndpointMap[*endpoint] // guarded by mu
	order    []*endpoint                      // endpoints in resolver order; guarded by mu
	panic    bool                             // guarded by mu
	fallback balancer.Picker                  // endpointsharding's picker; guarded by mu
	dirty    bool                             // snapshot out of date; guarded by mu
	counted  uint64                           // value of next when picks were last accounted; guarded by mu
}

func newTracker(cfg *Config, c clock, logger *slog.Logger, target string, events *Events) *tracker {
	t := &tracker{
		clock: c, logger: logger, target: target, events: events,
		ejectCh:  make(chan struct{}, 1),
		cfg:      cfg,
		eps:      resolver.NewEndpointMap[*endpoint](),
		fallback: errPicker{},
	}
	t.snap.Store(&snapshot{cfg: cfg, fallback: t.fallback, budget: new(atomic.Int32)})
	return t
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
	defer t.mu.Unlock()
	if cfg.windowBuckets() != t.cfg.windowBuckets() {
		for _, ep := range t.order {
			ep.window, ep.pos = make([]counts, cfg.windowBuckets()), 0
		}
	}
	t.cfg = cfg
	for _, ep := range t.order {
		ep.multiplier = max(ep.multiplier, cfg.MinMultiplier)
	}
	t.dirty = true
	t.publishLocked()
}

// setEndpoints tracks exactly eps, keeping the state of known endpoints and
// updating their base weights.
func (t *tracker) setEndpoints(eps []resolver.Endpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := resolver.NewEndpointMap[*endpoint]()
	order := make([]*endpoint, 0, len(eps))
	for _, e := range eps {
		if _, dup := next.Get(e); dup {
			continue
		}
		ep, ok := t.eps.Get(e)
		if !ok {
			ep = t.newEndpoint(e)
		}
		ep.base = max(weight.FromEndpoint(e).Weight, 1)
		next.Set(e, ep)
		order = append(order, ep)
	}
	t.eps, t.order, t.dirty = next, order, true
	t.publishLocked()
}

func (t *tracker) newEndpoint(e resolver.Endpoint) *endpoint {
	names := make([]string, len(e.Addresses))
	for i, a := range e.Addresses {
		names[i] = a.Addr
	}
	ep := &endpoint{t: t, name: strings.Join(names, ","), multiplier: 1, window: make([]counts, t.cfg.windowBuckets())}
	ep.done = ep.record
	ep.cur.Store(new(bucket))
	return ep
}

// setChildStates records which endpoints are READY, with their pickers, and
// the endpointsharding picker to use when none is.
func (t *tracker) setChildStates(states []endpointsharding.ChildState, fallback balancer.Picker) {
	t.mu.Lock()
	defer t.mu.Unlock()
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

// tick closes the current bucket of every endpoint and applies the rules:
// demotion and restoration, ratio ejection, re-admission, slow start and the
// decay of the ejection count. It returns the bucket length now configured.
func (t *tracker) tick() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	cfg := t.cfg
	t.countPicksLocked()
	for _, ep := range t.order {
		old := ep.cur.Swap(new(bucket))
		picks := math.Round(ep.picks)
		ep.picks -= picks
		c := counts{failure: old.failure.Load(), demote: old.demote.Load()}
		// Calls that did not fail count as successes (application errors
		// included: the endpoint answered).
		c.success = max(int64(picks)-c.failure-c.demote, 0)
		ep.window[ep.pos] = c
		ep.pos = (ep.pos + 1) % len(ep.window)
		if c.failure == 0 {
			ep.cleanTicks++
		} else {
			ep.cleanTicks = 0
		}
		switch ep.state {
		case stateEjected:
			if !now.Before(ep.ejectedUntil) && ep.ready {
				t.readmitLocked(ep, now)
			}
			continue
		case stateRamping:
			if c.failure > 0 {
				t.ejectLocked(ep, now, "failed during slow start")
				continue
			}
			if now.Sub(ep.rampStart) >= time.Duration(cfg.SlowStart) {
				ep.state = stateActive
			}
			t.dirty = true // the ramp moved on
		}
		t.demoteOrRestoreLocked(ep, c)
		if ep.ejecting.Load() {
			t.ejectLocked(ep, now, "consecutive failures")
			continue
		}
		var sum counts
		for _, w := range ep.window {
			sum.success += w.success
			sum.failure += w.failure
		}
		total := sum.success + sum.failure
		if total >= int64(cfg.MinRequests) && float64(sum.failure) >= cfg.FailureRatio*float64(total) && t.mayEjectLocked() {
			t.ejectLocked(ep, now, "failure ratio")
			continue
		}
		if ep.timesEjected > 0 && ep.cleanTicks >= len(ep.window) {
			ep.timesEjected--
			ep.cleanTicks = 0
		}
	}
	t.publishLocked()
	return time.Duration(cfg.Bucket)
}

// demoteOrRestoreLocked halves the multiplier after a tick with failures
// (once per tick, never below the floor) and doubles it back after a clean
// tick with successes.
func (t *tracker) demoteOrRestoreLocked(ep *endpoint, c counts) {
	switch {
	case c.failure+c.demote > 0 && ep.multiplier > t.cfg.MinMultiplier:
		ep.multiplier = max(ep.multiplier/2, t.cfg.MinMultiplier)
		t.events.Demotions.Add(1)
		t.logger.LogAttrs(context.Background(), slog.LevelInfo, "kit_weighted: endpoint demoted",
			slog.String("target", t.target), slog.String("endpoint", ep.name),
			slog.Float64("multiplier", ep.multiplier), slog.Int64("failures", c.failure+c.demote))
		t.dirty = true
	case c.failure+c.demote == 0 && c.success > 0 && ep.multiplier < 1:
		ep.multiplier = min(ep.multiplier*2, 1)
		t.events.Restorations.Add(1)
		t.logger.LogAttrs(context.Background(), slog.LevelDebug, "kit_weighted: endpoint restored",
			slog.String("target", t.target), slog.String("endpoint", ep.name), slog.Float64("multiplier", ep.multiplier))
		t.dirty = true
	}
}

// ejectMarked ejects the endpoints Done marked (consecutive failures).
func (t *tracker) ejectMarked() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	for _, ep := range t.order {
		if ep.ejecting.Load() && ep.state != stateEjected {
			t.ejectLocked(ep, now, "consecutive failures")
		}
	}
	t.publishLocked()
}

// maxEjectedLocked is how many endpoints may be ejected at once.
func (t *tracker) maxEjectedLocked() int {
	n := len(t.order)
	return min(n*t.cfg.MaxEjectionPercent/100, n-1)
}

func (t *tracker) ejectedLocked() int {
	n := 0
	for _, ep := range t.order {
		if ep.state == stateEjected || ep.ejecting.Load() {
			n++
		}
	}
	return n
}

func (t *tracker) mayEjectLocked() bool { return t.ejectedLocked() < t.maxEjectedLocked() }

// ejectLocked ejects ep for BaseEjectionTime x times ejected, capped, with jitter.
func (t *tracker) ejectLocked(ep *endpoint, now time.Time, reason string) {
	cfg := t.cfg
	ep.timesEjected++
	d := min(time.Duration(cfg.BaseEjectionTime)*time.Duration(ep.timesEjected), time.Duration(cfg.MaxEjectionTime))
	d = time.Duration(float64(d) * (1 + cfg.EjectionJitter*(2*rand.Float64()-1)))
	ep.state, ep.ejectedUntil, ep.cleanTicks = stateEjected, now.Add(d), 0
	ep.ejecting.Store(true)
	t.events.Ejections.Add(1)
	t.logger.LogAttrs(context.Background(), slog.LevelWarn, "kit_weighted: endpoint ejected",
		slog.String("target", t.target), slog.String("endpoint", ep.name), slog.String("reason", reason),
		slog.Duration("for", d), slog.Int("times", ep.timesEjected))
	t.dirty = true
}

// readmitLocked lets an ejected endpoint back in, ramping its weight up.
func (t *tracker) readmitLocked(ep *endpoint, now time.Time) {
	ep.state, ep.rampStart, ep.multiplier = stateRamping, now, 1
	if t.cfg.SlowStart == 0 {
		ep.state = stateActive
	}
	clear(ep.window) // old failures must not eject it again
	ep.consecutive.Store(0)
	ep.ejecting.Store(false)
	t.events.Readmissions.Add(1)
	t.logger.LogAttrs(context.Background(), slog.LevelInfo, "kit_weighted: endpoint re-admitted",
		slog.String("target", t.target), slog.String("endpoint", ep.name), slog.Int("times_ejected", ep.timesEjected))
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

// countPicksLocked attributes the picks made since the last call to the
// endpoints of the current snapshot, in proportion to their slots in its
// schedule (which is exact over whole rounds of the table).
func (t *tracker) countPicksLocked() {
	next := t.next.Load()
	delta := next - t.counted
	t.counted = next
	s := t.snap.Load()
	if delta == 0 || len(s.table) == 0 {
		return
	}
	perSlot := float64(delta) / float64(len(s.table))
	for i, e := range s.entries {
		e.ep.picks += perSlot * float64(s.slots[i])
	}
}

// publishLocked builds and publishes a snapshot when something changed.
func (t *tracker) publishLocked() {
	if !t.dirty {
		return
	}
	t.dirty = false
	t.countPicksLocked() // picks so far belong to the old schedule
	now := t.clock.Now()
	var ready, usable []*endpoint
	for _, ep := range t.order {
		if !ep.ready {
			continue
		}
		ready = append(ready, ep)
		if ep.state != stateEjected && !ep.ejecting.Load() {
			usable = append(usable, ep)
		}
	}
	panicking := len(ready) > 0 && len(usable)*100 < t.cfg.PanicThreshold*len(ready)
	if panicking != t.panic {
		t.panic = panicking
		level, msg := slog.LevelInfo, "kit_weighted: panic mode over; routing by ejection again"
		if panicking {
			level, msg = slog.LevelWarn, "kit_weighted: panic mode; too few usable endpoints, routing over every READY one"
			t.events.Panics.Add(1)
		}
		t.logger.LogAttrs(context.Background(), level, msg, slog.String("target", t.target),
			slog.Int("ready", len(ready)), slog.Int("usable", len(usable)))
	}
	pick := usable
	if panicking {
		pick = ready
	}
	s := &snapshot{cfg: t.cfg, panic: panicking, fallback: t.fallback, budget: new(atomic.Int32)}
	s.budget.Store(int32(max(t.maxEjectedLocked()-t.ejectedLocked(), 0)))
	if len(pick) > 0 {
		weights := make([]float64, len(pick))
		s.entries = make([]entry, len(pick))
		for i, ep := range pick {
			weights[i] = t.effectiveWeightLocked(ep, now)
			s.entries[i] = entry{ep: ep, picker: ep.picker}
		}
		s.table = schedule(weights)
		s.slots = make([]int, len(pick))
		for _, idx := range s.table {
			s.slots[idx]++
		}
	}
	t.snap.Store(s)
}

// ejectNow marks ep for ejection from Done, within the snapshot's budget,
// and wakes the control loop. Lock-free.
func (t *tracker) ejectNow(ep *endpoint, s *snapshot) {
	if s.budget.Add(-1) < 0 {
		s.budget.Add(1)
		return
	}
	if !ep.ejecting.CompareAndSwap(false, true) {
		s.budget.Add(1)
		return
	}
	select {
	case t.ejectCh <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// errPicker fails picks until the first child state arrives.
type errPicker struct{}

func (errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
}
