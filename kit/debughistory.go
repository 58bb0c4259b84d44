package kit

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/duration"
)

// The default history of /debug/kit: the last five minutes, a sample a
// second ([WithDebugHistory]).
const (
	DefaultHistoryWindow = 5 * time.Minute
	DefaultHistoryStep   = time.Second
)

// MinHistoryStep is the shortest step [WithDebugHistory] accepts: each
// sample gathers the whole /debug/kit document.
const MinHistoryStep = 100 * time.Millisecond

// maxHistorySamples bounds the samples a history keeps, whatever
// [WithDebugHistory] asks for.
const maxHistorySamples = 10_000

// maxMarks bounds the marks kept per target: past it the oldest go first.
const maxMarks = 1000

// The subjects a history keeps, whatever the churn: past a bound, a new
// subject takes the place of the one seen longest ago, unless every one was
// seen by the last two samples (then the new one is left out until one goes).
const (
	maxHistoryBalancers = 32   // kit_weighted balancers
	maxHistoryEndpoints = 200  // endpoints per balancer
	maxHistoryAll       = 1000 // endpoints of all the balancers
	maxHistoryClients   = 64   // clients, their breakers and throttles with them
)

// DebugHistory is what /debug/kit showed over the last minutes: the page's
// numbers sampled at a fixed step by a goroutine of the admin listener,
// never recorded per call. Every series has one value per sample time in
// Times, null (NaN in Go) where it had none: before its endpoint, client or
// layer existed, on the first sample of a rate, or while its subject was
// gone. A series whose subject has been gone for a whole window is dropped.
type DebugHistory struct {
	Step   duration.Duration `json:"step"`   // time between samples
	Window duration.Duration `json:"window"` // how far back the history reaches
	// Times are the sample times, oldest first, in Unix milliseconds.
	Times  []int64       `json:"times"`
	Server ServerHistory `json:"server"`
	// Balancers are the kit_weighted balancers of [DebugKit.Balancers],
	// sorted by name.
	Balancers []TargetHistory `json:"balancers"`
	// Clients are the clients of [DebugKit.Clients], sorted by name.
	Clients []ClientHistory `json:"clients"`
}

// HistorySeries is one value per sample time; NaN is written null in JSON.
type HistorySeries []float64

// MarshalJSON writes the values as numbers, NaN and infinities as null.
func (s HistorySeries) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+8*len(s))
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, v, 'g', 6, 64)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads numbers, and null as NaN.
func (s *HistorySeries) UnmarshalJSON(b []byte) error {
	var vs []*float64
	if err := json.Unmarshal(b, &vs); err != nil {
		return err
	}
	*s = make(HistorySeries, len(vs))
	for i, v := range vs {
		(*s)[i] = math.NaN()
		if v != nil {
			(*s)[i] = *v
		}
	}
	return nil
}

// ServerHistory is the server's inbound side over time.
type ServerHistory struct {
	// CallsPerSecond is the calls the server ended per second, every
	// method and code (from the telemetry layer's counts; null without it).
	CallsPerSecond HistorySeries `json:"calls_per_second"`
	// InFlight, Limit and RefusedPerSecond are the overload layer's calls
	// in flight, concurrency limit (null while the mode is off) and
	// refusals per second ([DebugKit.Overload]; null without the layer).
	InFlight         HistorySeries `json:"in_flight"`
	Limit            HistorySeries `json:"limit"`
	RefusedPerSecond HistorySeries `json:"refused_per_second"`
}

// TargetHistory is one kit_weighted balancer over time.
type TargetHistory struct {
	Name      string            `json:"name"` // [DebugBalancer.Name]
	Target    string            `json:"target"`
	Endpoints []EndpointHistory `json:"endpoints"` // sorted by addresses
	// Marks are the target's state changes in the window, oldest first.
	Marks []HistoryMark `json:"marks"`
}

// EndpointHistory is one endpoint of a kit_weighted target over time.
type EndpointHistory struct {
	Addresses string `json:"addresses"`
	// CallsPerSecond is the calls that ended on the endpoint per second
	// ([balancer.EndpointStats.Calls]).
	CallsPerSecond HistorySeries `json:"calls_per_second"`
	// Share is the endpoint's part of the target's calls in the same
	// second, from 0 to 1; null when the target had none.
	Share HistorySeries `json:"share"`
	// LatencyMS is the endpoint's latency estimate in milliseconds; null
	// before it is measured.
	LatencyMS HistorySeries `json:"latency_ms"`
	// Weight is the effective weight: base x multiplier x slow-start ramp,
	// 0 while ejected.
	Weight HistorySeries `json:"weight"`
}

// HistoryMark is a state change between two samples, dated by the later
// one. The marks come from the balancer's event counters as well as its
// states, so that an event that began and ended between two samples (an
// ejection and its re-admission, a panic over in a moment) is marked too.
type HistoryMark struct {
	Time int64 `json:"time"` // Unix milliseconds, one of [DebugHistory.Times]
	// Event is "ejection", "readmission" or "demotion" of Endpoint,
	// "joined" or "left" (Endpoint came into or went out of the resolver's
	// addresses: discovery, not the balancer), or "panic" (panic mode
	// began), "panic-end" (it ended) or "failover" (the active datacenter
	// changed) of the whole target.
	Event    string `json:"event"`
	Endpoint string `json:"endpoint,omitempty"`
	// Detail says more: the multiplier after a demotion, the datacenter
	// changed to, and "N times" when the event happened more than once
	// between the two samples.
	Detail string `json:"detail,omitempty"`
}

// The events of [HistoryMark] beyond those of [balancer.Event].
const (
	markPanicEnd = "panic-end"
	markFailover = "failover"
	markJoined   = "joined"
	markLeft     = "left"
)

// ClientHistory is one client over time.
type ClientHistory struct {
	Name   string `json:"name"` // [DebugClient.Name]
	Target string `json:"target"`
	// Breakers are the client's circuit breakers, by method.
	Breakers []BreakerHistory `json:"breakers"`
	// Throttles are its adaptive throttles, by target called.
	Throttles []ThrottleHistory `json:"throttles"`
}

// BreakerHistory is the state of one breaker over time.
type BreakerHistory struct {
	Method string `json:"method"`
	// States are "closed", "half-open" or "open", one per sample time; ""
	// (null in JSON) where the breaker was not there.
	States HistoryStates `json:"states"`
}

// HistoryStates is one state per sample time; "" is written null in JSON.
type HistoryStates []string

// MarshalJSON writes the states as strings, "" as null.
func (s HistoryStates) MarshalJSON() ([]byte, error) {
	vs := make([]*string, len(s))
	for i := range s {
		if s[i] != "" {
			vs[i] = &s[i]
		}
	}
	return json.Marshal(vs)
}

// ThrottleHistory is one adaptive throttle over time.
type ThrottleHistory struct {
	Target string `json:"target"`
	// Refusing is the probability, from 0 to 1, with which the throttle
	// refused calls locally ([overload.ThrottleStats.Probability]).
	Refusing HistorySeries `json:"refusing"`
}

// history keeps the samples of one server's /debug/kit document for a
// window: a fixed ring of values per series, the rings of subjects gone for
// a window dropped. Its methods are safe for concurrent use.
type history struct {
	step time.Duration
	size int // samples kept

	mu        sync.Mutex
	n         uint64                   // samples taken; guarded by mu
	times     []int64                  // ring of sample times, Unix ms; guarded by mu
	server    serverRings              // guarded by mu
	balancers map[string]*targetRings  // by balancer name; guarded by mu
	clients   map[string]*clientRings  // by client name; guarded by mu
	breakers  map[breakerKey]*ring     // by client name and method; guarded by mu
	throttles map[throttleKey]*ring    // by client name and throttled target; guarded by mu
	rates     map[rateKey]*rateCounter // previous readings of counters; guarded by mu
	scratch   []float64                // the rates of one target's endpoints; guarded by mu
	fullAt    uint64                   // sample+1 at which no endpoint could be added; guarded by mu
}

type (
	breakerKey  struct{ client, method string }
	throttleKey struct{ client, target string }
	rateKey     struct{ balancer, endpoint string } // "" "" for the server's calls, "" "refused" for its refusals
)

// newHistory returns a history of window at step; nil when window is 0.
func newHistory(window, step time.Duration) *history {
	if window <= 0 {
		return nil
	}
	size := min(int(window/step), maxHistorySamples)
	return &history{
		step: step, size: size, times: make([]int64, size),
		balancers: map[string]*targetRings{}, clients: map[string]*clientRings{},
		breakers: map[breakerKey]*ring{}, throttles: map[throttleKey]*ring{}, rates: map[rateKey]*rateCounter{},
	}
}

// run samples the document doc returns every step until ctx is done, the
// first time at once. The sample times are the wall time at the start plus
// the monotonic time since, so that they never go back when the wall clock
// is set back.
func (h *history) run(ctx context.Context, doc func() DebugKit) {
	t := time.NewTicker(h.step)
	defer t.Stop()
	start := time.Now()
	for {
		h.record(start.Add(time.Since(start)), doc())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ring holds a series' values at the sample numbers n-size+1 ... n.
type ring struct {
	vals []float64 // NaN where none; slot k%size holds sample k
	next uint64    // the sample after the last one written
}

func (h *history) newRing() *ring {
	r := &ring{vals: make([]float64, h.size)}
	for i := range r.vals {
		r.vals[i] = math.NaN()
	}
	return r
}

// put writes v as sample k (k >= r.next-1), and NaN in the samples it
// skipped.
func (h *history) put(r *ring, k uint64, v float64) {
	for i := max(r.next, k+1-min(k+1, uint64(h.size))); i < k; i++ {
		r.vals[i%uint64(h.size)] = math.NaN()
	}
	r.vals[k%uint64(h.size)] = v
	r.next = k + 1
}

// series returns the values of the samples first ... h.n-1.
func (h *history) series(r *ring, first uint64) HistorySeries {
	if r == nil {
		return nil
	}
	out := make(HistorySeries, 0, h.n-first)
	for k := first; k < h.n; k++ {
		v := math.NaN()
		if k < r.next {
			v = r.vals[k%uint64(h.size)]
		}
		out = append(out, v)
	}
	return out
}

// staleLocked reports whether r has no value in the window that the
// sample k closes.
func (h *history) staleLocked(r *ring, k uint64) bool {
	return r.next+uint64(h.size) <= k+1
}

// rateCounter turns readings of a growing counter into a rate.
type rateCounter struct {
	value float64
	at    time.Time
	seen  uint64 // the sample of the reading
}

// rateLocked returns the rate per second of the counter key since its last
// reading, NaN for its first reading, after a gap, or when it went down
// (the counter was made again).
func (h *history) rateLocked(key rateKey, k uint64, now time.Time, value float64) float64 {
	c, ok := h.rates[key]
	if !ok {
		c = new(rateCounter)
		h.rates[key] = c
	}
	rate := math.NaN()
	if ok && c.seen+1 == k && value >= c.value && now.After(c.at) {
		rate = (value - c.value) / now.Sub(c.at).Seconds()
	}
	*c = rateCounter{value: value, at: now, seen: k}
	return rate
}

type serverRings struct{ calls, inFlight, limit, refused *ring }

// targetRings is the history of one kit_weighted balancer.
type targetRings struct {
	target    string
	key       balancerKey // the balancer the name was of at the last sample
	endpoints map[string]*endpointRings
	marks     []mark
	last      uint64 // the last sample that saw the target
	panic     bool   // as of the last sample
	active    string // the active datacenter as of the last sample
	panics    int64  // the panic count as of the last sample
	switches  int64  // the datacenter switches as of the last sample
}

type mark struct {
	k uint64 // the sample
	HistoryMark
}

// endpointRings is the history of one endpoint, and what the last sample
// saw of it, to tell its state changes.
type endpointRings struct {
	calls, share, latency, weight *ring
	state                         balancer.EndpointState
	multiplier                    float64
	ejections, demotions          int64 // the endpoint's counts
}

type clientRings struct {
	target string
	last   uint64
}

// record adds the sample of doc taken at now.
func (h *history) record(now time.Time, doc DebugKit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.n
	h.n++
	// A time before the previous sample's (a clock set back) is taken
	// as the previous one: the times never go back.
	if k > 0 {
		if prev := time.UnixMilli(h.times[(k-1)%uint64(h.size)]); now.Before(prev) {
			now = prev
		}
	}
	h.times[k%uint64(h.size)] = now.UnixMilli()
	h.recordServerLocked(k, now, doc)
	for _, ts := range doc.Balancers {
		h.recordTargetLocked(k, now, ts)
	}
	for _, c := range doc.Clients {
		h.recordClientLocked(k, c)
	}
	h.dropStaleLocked(k)
}

func (h *history) recordServerLocked(k uint64, now time.Time, doc DebugKit) {
	s := &h.server
	if doc.Calls != nil {
		if s.calls == nil {
			s.calls = h.newRing()
		}
		h.put(s.calls, k, h.rateLocked(rateKey{}, k, now, float64(*doc.Calls)))
	}
	if o := doc.Overload; o != nil {
		if s.inFlight == nil {
			s.inFlight, s.limit, s.refused = h.newRing(), h.newRing(), h.newRing()
		}
		limit := math.NaN()
		if o.Limit > 0 {
			limit = float64(o.Limit)
		}
		h.put(s.inFlight, k, float64(o.InFlight))
		h.put(s.limit, k, limit)
		h.put(s.refused, k, h.rateLocked(rateKey{endpoint: "refused"}, k, now, float64(o.Refused)))
	}
}

func (h *history) recordTargetLocked(k uint64, now time.Time, b DebugBalancer) {
	ts, name := b.TargetStats, cmp.Or(b.Name, b.Target)
	t, known := h.balancers[name]
	if !known && !makeRoom(h.balancers, maxHistoryBalancers, k, func(t *targetRings) uint64 { return t.last },
		func(name string) {
			for addr := range h.balancers[name].endpoints {
				delete(h.rates, rateKey{name, addr})
			}
		}) {
		return
	}
	if !known {
		t = &targetRings{target: ts.Target, endpoints: map[string]*endpointRings{}}
		h.balancers[name] = t
	}
	if known && t.key != b.key {
		// Another balancer under the name (its client's balancer
		// replaced): no state change to tell, and its counters start anew.
		for addr := range t.endpoints {
			delete(h.rates, rateKey{name, addr})
		}
	}
	known = known && t.last+1 == k && t.key == b.key // a gap: no state change to tell either
	t.key = b.key
	at := now.UnixMilli()
	addMark := func(event, endpoint, detail string, n int64) {
		if n <= 0 {
			return
		}
		if n > 1 {
			detail = strings.TrimPrefix(detail+", "+strconv.FormatInt(n, 10)+" times", ", ")
		}
		t.marks = append(t.marks, mark{k, HistoryMark{Time: at, Event: event, Endpoint: endpoint, Detail: detail}})
	}
	// Panics: the count says how many began, the states whether the last
	// one is over.
	if known {
		began := max(ts.Events.Panics-t.panics, 0)
		if began == 0 && ts.Panic && !t.panic {
			began = 1
		}
		ended := began + b2i(t.panic) - b2i(ts.Panic)
		if t.panic {
			addMark(markPanicEnd, "", "", min(ended, 1))
			ended--
		}
		addMark(string(balancer.EventPanic), "", "", began)
		addMark(markPanicEnd, "", "", ended)
	}
	t.panic, t.panics = ts.Panic, ts.Events.Panics
	if dcs := ts.Datacenters; dcs != nil {
		var switches int64
		for _, n := range dcs.Switches {
			switches += n
		}
		if known && t.active != "" {
			n := switches - t.switches
			if n <= 0 && dcs.Active != t.active {
				n = 1
			}
			addMark(markFailover, "", dcs.Active, n)
		}
		t.active, t.switches = dcs.Active, switches
	}
	rates := slices.Grow(h.scratch[:0], len(ts.Endpoints))[:len(ts.Endpoints)]
	h.scratch = rates
	var total float64
	for i, es := range ts.Endpoints {
		rates[i] = h.rateLocked(rateKey{name, es.Addresses}, k, now, float64(es.Calls))
		if !math.IsNaN(rates[i]) {
			total += rates[i]
		}
	}
	for i, es := range ts.Endpoints {
		e, seen := t.endpoints[es.Addresses]
		if !seen && (!makeRoom(t.endpoints, maxHistoryEndpoints, k, func(e *endpointRings) uint64 { return e.calls.next - 1 },
			func(addr string) { delete(h.rates, rateKey{name, addr}) }) || !h.makeRoomLocked(k)) {
			delete(h.rates, rateKey{name, es.Addresses}) // not kept: nor its counter
			continue
		}
		if !seen {
			e = &endpointRings{calls: h.newRing(), share: h.newRing(), latency: h.newRing(), weight: h.newRing()}
			t.endpoints[es.Addresses] = e
		}
		if known && (!seen || e.calls.next != k) {
			addMark(markJoined, es.Addresses, "", 1)
		}
		if known && seen && e.calls.next == k {
			// Ejections from the count (a state change otherwise), and as
			// many re-admissions as leave the endpoint in its state now.
			wasEjected, isEjected := e.state == balancer.StateEjected, es.State == balancer.StateEjected
			ejections := max(es.EjectionCount-e.ejections, 0)
			if ejections == 0 && isEjected && !wasEjected {
				ejections = 1
			}
			readmissions := ejections + b2i(wasEjected) - b2i(isEjected)
			if wasEjected {
				addMark(string(balancer.EventReadmission), es.Addresses, "", min(readmissions, 1))
				readmissions--
			}
			addMark(string(balancer.EventEjection), es.Addresses, "", ejections)
			addMark(string(balancer.EventReadmission), es.Addresses, "", readmissions)
			demotions := max(es.DemotionCount-e.demotions, 0)
			if demotions == 0 && es.Multiplier < e.multiplier {
				demotions = 1
			}
			if demotions > 0 { // the detail costs an allocation: only for a mark
				addMark(string(balancer.EventDemotion), es.Addresses, "multiplier "+formatFloat(es.Multiplier), demotions)
			}
		}
		e.state, e.multiplier, e.ejections, e.demotions = es.State, es.Multiplier, es.EjectionCount, es.DemotionCount
		share, latency := math.NaN(), math.NaN()
		if total > 0 && !math.IsNaN(rates[i]) {
			share = rates[i] / total
		}
		if es.Latency > 0 {
			latency = float64(es.Latency) / float64(time.Millisecond)
		}
		h.put(e.calls, k, rates[i])
		h.put(e.share, k, share)
		h.put(e.latency, k, latency)
		h.put(e.weight, k, es.Weight)
	}
	if known {
		// The endpoints of the last sample that this one lacks (all the
		// others were just written): they left.
		var left []string
		for addr, e := range t.endpoints {
			if e.calls.next == k {
				left = append(left, addr)
			}
		}
		slices.Sort(left)
		for _, addr := range left {
			addMark(markLeft, addr, "", 1)
		}
	}
	t.last = k
}

func (h *history) recordClientLocked(k uint64, c DebugClient) {
	name := cmp.Or(c.Name, c.Target)
	cr, ok := h.clients[name]
	if !ok && !makeRoom(h.clients, maxHistoryClients, k, func(c *clientRings) uint64 { return c.last },
		func(name string) {
			maps.DeleteFunc(h.breakers, func(key breakerKey, _ *ring) bool { return key.client == name })
			maps.DeleteFunc(h.throttles, func(key throttleKey, _ *ring) bool { return key.client == name })
		}) {
		return
	}
	if !ok {
		cr = &clientRings{target: c.Target}
		h.clients[name] = cr
	}
	cr.last = k
	for _, b := range c.Breakers {
		key := breakerKey{name, b.Method}
		r, ok := h.breakers[key]
		if !ok {
			r = h.newRing()
			h.breakers[key] = r
		}
		h.put(r, k, float64(slices.Index(breakerStates, b.State)))
	}
	for _, th := range c.Throttles {
		key := throttleKey{name, th.Target}
		r, ok := h.throttles[key]
		if !ok {
			r = h.newRing()
			h.throttles[key] = r
		}
		h.put(r, k, th.Probability)
	}
}

// makeRoom makes room in m, which keeps at most limit subjects, for a new
// one seen by sample k: when m is full it drops the subject whose last
// sample (last) is the oldest, calling drop first, unless that one was seen
// by sample k-1 or later. It reports whether there is room.
func makeRoom[V any](m map[string]V, limit int, k uint64, last func(V) uint64, drop func(string)) bool {
	if len(m) < limit {
		return true
	}
	stalest, oldest := "", uint64(math.MaxUint64)
	for key, v := range m {
		if l := last(v); l < oldest || l == oldest && key < stalest {
			stalest, oldest = key, l
		}
	}
	if oldest+1 >= k {
		return false
	}
	drop(stalest)
	delete(m, stalest)
	return true
}

// makeRoomLocked makes room for a new endpoint seen by sample k among the
// endpoints of all the balancers, as [makeRoom] does.
func (h *history) makeRoomLocked(k uint64) bool {
	if h.fullAt == k+1 { // no room found earlier in this sample
		return false
	}
	n := 0
	for _, t := range h.balancers {
		n += len(t.endpoints)
	}
	if n < maxHistoryAll {
		return true
	}
	var stalest struct{ balancer, addr string }
	oldest := uint64(math.MaxUint64)
	for name, t := range h.balancers {
		for addr, e := range t.endpoints {
			if e.calls.next-1 < oldest {
				stalest.balancer, stalest.addr, oldest = name, addr, e.calls.next-1
			}
		}
	}
	if oldest+1 >= k {
		h.fullAt = k + 1
		return false
	}
	delete(h.balancers[stalest.balancer].endpoints, stalest.addr)
	delete(h.rates, rateKey{stalest.balancer, stalest.addr})
	return true
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// breakerStates are the states of a breaker; a ring holds their index.
var breakerStates = []string{"closed", "half-open", "open"}

// dropStaleLocked forgets what the window that sample k closes does not
// show: series without a value in it, marks before it, targets and
// clients gone for all of it.
func (h *history) dropStaleLocked(k uint64) {
	first := k + 1 - min(k+1, uint64(h.size))
	for name, t := range h.balancers {
		maps.DeleteFunc(t.endpoints, func(addr string, e *endpointRings) bool {
			if h.staleLocked(e.calls, k) {
				delete(h.rates, rateKey{name, addr})
				return true
			}
			return false
		})
		t.marks = slices.DeleteFunc(t.marks, func(m mark) bool { return m.k < first })
		if over := len(t.marks) - maxMarks; over > 0 {
			t.marks = slices.Delete(t.marks, 0, over)
		}
		if t.last < first {
			delete(h.balancers, name)
		}
	}
	maps.DeleteFunc(h.breakers, func(_ breakerKey, r *ring) bool { return h.staleLocked(r, k) })
	maps.DeleteFunc(h.throttles, func(_ throttleKey, r *ring) bool { return h.staleLocked(r, k) })
	maps.DeleteFunc(h.clients, func(_ string, c *clientRings) bool { return c.last < first })
}

// snapshot returns the history as it is now.
func (h *history) snapshot() *DebugHistory {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.n - min(h.n, uint64(h.size))
	out := &DebugHistory{
		Step: duration.Duration(h.step), Window: duration.Duration(h.step * time.Duration(h.size)),
		Times: make([]int64, 0, h.n-first), Balancers: []TargetHistory{}, Clients: []ClientHistory{},
	}
	for k := first; k < h.n; k++ {
		out.Times = append(out.Times, h.times[k%uint64(h.size)])
	}
	s := h.server
	out.Server = ServerHistory{CallsPerSecond: h.series(s.calls, first), InFlight: h.series(s.inFlight, first),
		Limit: h.series(s.limit, first), RefusedPerSecond: h.series(s.refused, first)}
	for name, t := range h.balancers {
		th := TargetHistory{Name: name, Target: t.target, Endpoints: []EndpointHistory{}, Marks: []HistoryMark{}}
		for addr, e := range t.endpoints {
			th.Endpoints = append(th.Endpoints, EndpointHistory{Addresses: addr, CallsPerSecond: h.series(e.calls, first),
				Share: h.series(e.share, first), LatencyMS: h.series(e.latency, first), Weight: h.series(e.weight, first)})
		}
		slices.SortFunc(th.Endpoints, func(a, b EndpointHistory) int { return cmp.Compare(a.Addresses, b.Addresses) })
		for _, m := range t.marks {
			th.Marks = append(th.Marks, m.HistoryMark)
		}
		out.Balancers = append(out.Balancers, th)
	}
	slices.SortFunc(out.Balancers, func(a, b TargetHistory) int { return cmp.Compare(a.Name, b.Name) })
	for name, c := range h.clients {
		ch := ClientHistory{Name: name, Target: c.target, Breakers: []BreakerHistory{}, Throttles: []ThrottleHistory{}}
		for key, r := range h.breakers {
			if key.client == name {
				states := make(HistoryStates, 0, h.n-first)
				for _, v := range h.series(r, first) {
					st := ""
					if !math.IsNaN(v) && v >= 0 {
						st = breakerStates[int(v)]
					}
					states = append(states, st)
				}
				ch.Breakers = append(ch.Breakers, BreakerHistory{Method: key.method, States: states})
			}
		}
		for key, r := range h.throttles {
			if key.client == name {
				ch.Throttles = append(ch.Throttles, ThrottleHistory{Target: key.target, Refusing: h.series(r, first)})
			}
		}
		slices.SortFunc(ch.Breakers, func(a, b BreakerHistory) int { return cmp.Compare(a.Method, b.Method) })
		slices.SortFunc(ch.Throttles, func(a, b ThrottleHistory) int { return cmp.Compare(a.Target, b.Target) })
		out.Clients = append(out.Clients, ch)
	}
	slices.SortFunc(out.Clients, func(a, b ClientHistory) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
