package balancer

import (
	"cmp"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpckit/grpckit/kit/duration"
)

// Events counts a balancer's state changes. Every field only grows.
type Events struct {
	Demotions    atomic.Int64 // a tick with failures halved a multiplier
	Restorations atomic.Int64 // a clean tick doubled a multiplier back
	Ejections    atomic.Int64 // endpoints ejected (consecutive failures, ratio, failing during slow start)
	Readmissions atomic.Int64 // ejected endpoints let back in
	Panics       atomic.Int64 // times panic mode began
}

// Event is a kind of state change of a kit_weighted balancer. Its names
// label the events on /metrics and key them in JSON ([EventCounts]).
type Event string

// The events of a kit_weighted balancer.
const (
	EventDemotion    Event = "demotion"    // a tick with failures halved a multiplier
	EventRestoration Event = "restoration" // a clean tick doubled a multiplier back
	EventEjection    Event = "ejection"    // an endpoint was ejected
	EventReadmission Event = "readmission" // an ejected endpoint was let back in
	EventPanic       Event = "panic"       // panic mode began
)

// EventCounts is a copy of [Events]. In JSON, each count is keyed by its
// [Event] name.
type EventCounts struct {
	Demotions    int64 `json:"demotion"`
	Restorations int64 `json:"restoration"`
	Ejections    int64 `json:"ejection"`
	Readmissions int64 `json:"readmission"`
	Panics       int64 `json:"panic"`
}

// All yields every event with its count, in the order of the constants.
func (c EventCounts) All() iter.Seq2[Event, int64] {
	return func(yield func(Event, int64) bool) {
		_ = yield(EventDemotion, c.Demotions) && yield(EventRestoration, c.Restorations) &&
			yield(EventEjection, c.Ejections) && yield(EventReadmission, c.Readmissions) && yield(EventPanic, c.Panics)
	}
}

// EndpointState is where an endpoint is in its ejection cycle.
type EndpointState string

// The states of an endpoint.
const (
	StateActive  EndpointState = "active"  // picked by weight
	StateRamping EndpointState = "ramping" // re-admitted, its weight ramping up (slow start)
	StateEjected EndpointState = "ejected" // not picked until its ejection time passed and it is READY
)

// EndpointStates returns every endpoint state: active, ramping, ejected.
func EndpointStates() []EndpointState {
	return []EndpointState{StateActive, StateRamping, StateEjected}
}

// TargetStats describes one kit_weighted balancer (one ClientConn).
type TargetStats struct {
	Target string `json:"target"`
	// ID numbers the balancer among those attached to its Monitor, from 1
	// in the order they attached; the Monitor gives no number twice, so
	// that Target and ID tell apart two balancers of one target.
	ID        uint64          `json:"id"`
	Config    Config          `json:"config"` // the parameters in force
	Panic     bool            `json:"panic"`  // routing over every READY endpoint
	Endpoints []EndpointStats `json:"endpoints"`
	Events    EventCounts     `json:"events"`
	// Datacenters is the datacenter failover of the target; nil when its
	// resolver states none ([SetDatacenters]).
	Datacenters *DatacenterStats `json:"datacenters,omitempty"`
}

// EndpointStats describes one endpoint of a balancer.
type EndpointStats struct {
	Addresses    string        `json:"addresses"`              // comma-separated addresses of the endpoint
	BaseWeight   uint32        `json:"base_weight"`            // from the resolver (Consul weights)
	Multiplier   float64       `json:"multiplier"`             // demotion factor, 1 when healthy
	Weight       float64       `json:"weight"`                 // effective weight: base x multiplier x slow-start ramp
	State        EndpointState `json:"state"`                  // active, ramping or ejected
	Ready        bool          `json:"ready"`                  // its connection is READY
	Success      int64         `json:"success"`                // calls counted as successes in the window (as of the last tick)
	Failures     int64         `json:"failures"`               // failures in the window, the current tick's included
	Demotions    int64         `json:"demotions"`              // demoting outcomes in the window (DemoteCodes, timeouts judged busy), the current tick's included
	TimesEjected int           `json:"times_ejected"`          // decays by one after each clean window
	EjectedUntil time.Time     `json:"ejected_until,omitzero"` // zero unless ejected
	InFlight     int64         `json:"in_flight"`              // calls picked and not ended
	// Calls counts the calls that ended on the endpoint since the balancer
	// first had it, whatever their outcome; it only grows, so the
	// difference of two readings is the calls between them.
	Calls int64 `json:"calls"`
	// EjectionCount and DemotionCount count the times the endpoint was
	// ejected and demoted since the balancer first had it; they only
	// grow, so that two readings tell the events between them, however
	// short-lived.
	EjectionCount int64 `json:"ejection_count"`
	DemotionCount int64 `json:"demotion_count"`
	// Latency is the endpoint's latency estimate under load_aware (zero
	// before its first measured call): see [Config.LatencyDecay].
	Latency duration.Duration `json:"latency,omitzero"`
}

// Monitor collects the statistics of the kit_weighted balancers attached to
// it: a resolver puts a Monitor in the state it gives a ClientConn
// ([SetMonitor]), and the ClientConn's balancer reports to it until it
// closes. One Monitor may serve many ClientConns. The zero value is ready to
// use; a Monitor must not be copied. Safe for concurrent use.
type Monitor struct {
	mu       sync.Mutex
	trackers map[*tracker]uint64 // the ID of each; guarded by mu
	lastID   uint64              // the last ID given; guarded by mu
}

func (m *Monitor) add(t *tracker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.trackers == nil {
		m.trackers = make(map[*tracker]uint64)
	}
	if _, ok := m.trackers[t]; !ok {
		m.lastID++
		m.trackers[t] = m.lastID
	}
}

func (m *Monitor) remove(t *tracker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.trackers, t)
}

// Stats returns a read-only picture of the live balancers attached to m,
// sorted by target, then ID.
func (m *Monitor) Stats() []TargetStats {
	type attached struct {
		t  *tracker
		id uint64
	}
	m.mu.Lock()
	ts := make([]attached, 0, len(m.trackers))
	for t, id := range m.trackers {
		ts = append(ts, attached{t, id})
	}
	m.mu.Unlock()
	out := make([]TargetStats, 0, len(ts))
	for _, a := range ts {
		st := a.t.stats()
		st.ID = a.id
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b TargetStats) int {
		return cmp.Or(strings.Compare(a.Target, b.Target), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (t *tracker) stats() TargetStats {
	t.mu.Lock()
	defer t.unlock()
	now := t.clock.Now()
	st := TargetStats{Target: t.target, Config: *t.cfg, Panic: t.panic, Events: EventCounts{
		Demotions: t.events.Demotions.Load(), Restorations: t.events.Restorations.Load(),
		Ejections: t.events.Ejections.Load(), Readmissions: t.events.Readmissions.Load(), Panics: t.events.Panics.Load(),
	}, Datacenters: t.datacenterStatsLocked()}
	for _, ep := range t.order {
		es := EndpointStats{
			Addresses: ep.name, BaseWeight: ep.base, Multiplier: ep.multiplier,
			Weight: t.effectiveWeightLocked(ep, now), State: ep.state.name(), Ready: ep.ready,
			TimesEjected: ep.timesEjected, EjectionCount: ep.ejections, DemotionCount: ep.demotions,
		}
		es.InFlight = int64(ep.load.inFlight())
		es.Calls = ep.calls + int64(uint32(ep.load.ends.Load())-ep.seenEnded)
		if l, measured := ep.load.estimate(); measured != 0 {
			es.Latency = duration.Duration(l)
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
