package balancer

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Events counts a balancer's state changes. Every field only grows.
type Events struct {
	Demotions    atomic.Int64 // a tick with failures halved a multiplier
	Restorations atomic.Int64 // a clean tick doubled a multiplier back
	Ejections    atomic.Int64 // endpoints ejected (consecutive failures, ratio, failing during slow start)
	Readmissions atomic.Int64 // ejected endpoints let back in
	Panics       atomic.Int64 // times panic mode began
}

// EventCounts is a copy of [Events].
type EventCounts struct {
	Demotions, Restorations, Ejections, Readmissions, Panics int64
}

// TargetStats describes one kit_weighted balancer (one ClientConn).
type TargetStats struct {
	Target    string
	Config    Config // the parameters in force
	Panic     bool   // routing over every READY endpoint
	Endpoints []EndpointStats
	Events    EventCounts
}

// EndpointStats describes one endpoint of a balancer.
type EndpointStats struct {
	Addresses    string    // comma-separated addresses of the endpoint
	BaseWeight   uint32    // from the resolver (Consul weights)
	Multiplier   float64   // demotion factor, 1 when healthy
	Weight       float64   // effective weight: base x multiplier x slow-start ramp
	State        string    // active, ejected or ramping
	Ready        bool      // its connection is READY
	Success      int64     // calls counted as successes in the window (as of the last tick)
	Failures     int64     // failures in the window, the current tick's included
	Demotions    int64     // demoting outcomes (RESOURCE_EXHAUSTED) in the window, the current tick's included
	TimesEjected int       // decays by one after each clean window
	EjectedUntil time.Time // zero unless ejected
}

// monitor knows the live balancers of a builder.
type monitor struct {
	mu       sync.Mutex
	trackers map[*tracker]struct{} // guarded by mu
}

func (m *monitor) add(t *tracker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.trackers == nil {
		m.trackers = make(map[*tracker]struct{})
	}
	m.trackers[t] = struct{}{}
}

func (m *monitor) remove(t *tracker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.trackers, t)
}

func (m *monitor) stats() []TargetStats {
	m.mu.Lock()
	ts := make([]*tracker, 0, len(m.trackers))
	for t := range m.trackers {
		ts = append(ts, t)
	}
	m.mu.Unlock()
	out := make([]TargetStats, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.stats())
	}
	slices.SortFunc(out, func(a, b TargetStats) int {
		if a.Target < b.Target {
			return -1
		}
		if a.Target > b.Target {
			return 1
		}
		return 0
	})
	return out
}

// Stats returns a read-only picture of every live kit_weighted balancer in
// the process, sorted by target. Safe for concurrent use.
func Stats() []TargetStats { return defaultBuilder.monitor.stats() }

func (t *tracker) stats() TargetStats {
	t.mu.Lock()
	defer t.unlock()
	now := t.clock.Now()
	st := TargetStats{Target: t.target, Config: *t.cfg, Panic: t.panic, Events: EventCounts{
		Demotions: t.events.Demotions.Load(), Restorations: t.events.Restorations.Load(),
		Ejections: t.events.Ejections.Load(), Readmissions: t.events.Readmissions.Load(), Panics: t.events.Panics.Load(),
	}}
	for _, ep := range t.order {
		es := EndpointStats{
			Addresses: ep.name, BaseWeight: ep.base, Multiplier: ep.multiplier,
			Weight: t.effectiveWeightLocked(ep, now), State: ep.state.String(), Ready: ep.ready,
			TimesEjected: ep.timesEjected,
		}
		if ep.state == stateEjected {
			es.EjectedUntil = ep.ejectedUntil
			es.Weight = 0
		}
		for _, c := range ep.window {
			es.Success += c.success
			es.Failures += c.failure
			es.Demotions += c.demote
		}
		// Outcomes since the last tick, not yet in the window.
		es.Failures += ep.out.failure.Load() - ep.seen.failure
		es.Demotions += ep.out.demote.Load() - ep.seen.demote
		st.Endpoints = append(st.Endpoints, es)
	}
	return st
}
