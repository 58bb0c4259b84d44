package balancer

import (
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/statuscode"
)

// snapshot is what the hot path reads: an immutable pick table over the
// usable READY endpoints, published through tracker.snap.
type snapshot struct {
	cfg      *Config
	entries  []entry // endpoints that can be picked, each with its child picker
	table    []int32 // schedule over entries; empty when no endpoint is READY
	panic    bool    // routing over every READY endpoint, ejected or not
	fallback balancer.Picker
}

type entry struct {
	ep     *endpoint
	picker balancer.Picker // the endpoint's pick_first picker (READY)
	// perCall is the mean effective weight over this endpoint's: how much
	// one call in flight adds to its cost under LoadAware.
	perCall float64
}

// picker reads the tracker's current snapshot on every pick, so the control
// loop changes weights without a new picker.
type picker struct{ t *tracker }

// Pick is lock-free, O(1) in the number of endpoints and allocation-free
// (when the child picker sets no Done of its own). Only in the moment between
// a failing call that marks an endpoint and the control loop's next snapshot
// does it scan for an unmarked endpoint.
func (p picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	s := p.t.snap.Load()
	n := uint64(len(s.table))
	if n == 0 {
		return s.fallback.Pick(info)
	}
	k := p.t.next.Add(1)
	idx := int(s.table[k%n])
	e := &s.entries[idx]
	if !s.panic && e.ep.marked.Load() {
		e = s.unmarked(idx)
	}
	var start int64 // when a measured call started; 0: not measured
	if s.cfg.LoadAware {
		// One call in sampleEvery is measured (a clock read costs as
		// much as the rest of Pick and Done), chosen by a hash of k: a
		// pattern in the schedule does not make some endpoints unmeasured.
		h := mix(k)
		if h%sampleEvery == 0 {
			start = p.t.clock.Nanos()
			p.t.now.Store(start)
		}
		if len(s.entries) > 1 {
			var probe bool
			if e, probe = s.lessLoaded(e, h, p.t.now.Load(), math.Float64frombits(p.t.typical.Load())); probe && start == 0 {
				start = p.t.clock.Nanos()
			}
		}
	}
	res, err := e.picker.Pick(info)
	if err != nil {
		return res, err
	}
	e.ep.load.started.Add(1)
	record := e.ep.done
	if s.cfg.whenSilent || start != 0 {
		record = p.t.newCall(e.ep, start, s.cfg.whenSilent)
	}
	if res.Done == nil {
		res.Done = record
	} else {
		childDone := res.Done
		res.Done = func(di balancer.DoneInfo) {
			childDone(di)
			record(di)
		}
	}
	return res, nil
}

// unmarked returns the first entry after idx whose endpoint is not marked for
// ejection, or entry idx when every one is.
func (s *snapshot) unmarked(idx int) *entry {
	for k := 1; k < len(s.entries); k++ {
		if e := &s.entries[(idx+k)%len(s.entries)]; !e.ep.marked.Load() {
			return e
		}
	}
	return &s.entries[idx]
}

// slowFactor: an endpoint whose latency estimate is above slowFactor times
// the typical one is slow.
const slowFactor = 2

// mix is splitmix64's finalizer: its bits are independent enough of each
// other and of k that the sampling, the second candidate and the
// schedule's own order do not line up.
func mix(k uint64) uint64 {
	k = (k ^ k>>30) * 0xBF58476D1CE4E5B9
	k = (k ^ k>>27) * 0x94D049BB133111EB
	return k ^ k>>31
}

// sampleEvery: one call in sampleEvery is measured under LoadAware, and
// every probe.
const sampleEvery = 16

// lessLoaded weighs a, the entry the schedule named, against a second entry
// drawn from the schedule by h, a hash of the pick counter (so drawn by
// weight), and returns the second only when its cost is below keep times
// a's. An endpoint not measured yet is never judged. An endpoint due a probe
// by the recent time now keeps its turn: then probe is true. ref is the
// typical latency (tracker.typical).
func (s *snapshot) lessLoaded(a *entry, h uint64, now int64, ref float64) (e *entry, probe bool) {
	la, measured := a.ep.load.estimate()
	if measured == 0 {
		return a, false
	}
	inA := a.ep.load.inFlight()
	// A probe is due after ProbeInterval without a sample, longer for
	// each call in flight (they will give one, unless they are long-lived
	// streams).
	if float64(now-measured) >= float64(s.cfg.probe)*(1+inA) {
		return a, true
	}
	la += s.cfg.floor
	costA := la * (1 + a.perCall*inA)
	if s.cfg.keep*costA <= s.cfg.floor {
		// No endpoint costs less than the floor: none can be cheaper
		// enough, and the second is not even read.
		return a, false
	}
	n := uint64(len(s.table))
	j := (h >> 32) * n >> 32 // a slot drawn uniformly by the top half of h
	b := &s.entries[s.table[j]]
	if b == a && la > slowFactor*(ref+s.cfg.floor) { // ref 0 (before the first tick): an endpoint slower than 2 floors
		// Drawing a again is what keeps the shares exact at equal cost (a
		// pair of endpoints is then drawn as often in either order), but
		// a slow endpoint would keep that share of its turns: draw another
		// endpoint, any.
		i := (h >> 8) % uint64(len(s.entries)-1)
		if b = &s.entries[i]; b == a {
			b = &s.entries[len(s.entries)-1]
		}
	}
	if b == a || !s.panic && b.ep.marked.Load() {
		return a, false
	}
	lb, measured := b.ep.load.estimate()
	if measured == 0 {
		return a, false
	}
	if (lb+s.cfg.floor)*(1+b.perCall*b.ep.load.inFlight()) < s.cfg.keep*costA {
		return b, false
	}
	return a, false
}

// load is an endpoint's work as Pick and Done see it: calls started and
// ended, answers, and a latency estimate decaying with time (an
// exponentially weighted moving average whose weight follows the time
// between samples).
type load struct {
	started atomic.Uint64 // picks; only the low 32 bits are compared with ends
	// ends counts the calls ended in its low 32 bits and the answers among
	// them in its high 32 bits: one atomic add per Done. Both are only
	// subtracted and compared; the low half's wrap carries one into the
	// answers every 2^32 calls (which could misjudge one timeout then).
	ends     atomic.Uint64
	latency  atomic.Uint64 // math.Float64bits of the estimate, in nanoseconds
	measured atomic.Int64  // clock.Nanos of the last sample; 0: none yet
	answers1 atomic.Uint32 // answers sampled, up to warmSamples
}

// warmSamples: the estimate starts as the least of an endpoint's first
// warmSamples answers, so that a first call slowed by a new connection (or
// a pause) does not mark the endpoint slow; from then on it is a moving
// average.
const warmSamples = 8

// Units of load.ends.
const (
	oneEnd    = 1
	oneAnswer = 1 << 32
)

// answers returns the answer count held in ends.
func answersOf(ends uint64) uint64 { return ends >> 32 }

// inFlight returns the calls picked and not ended.
func (l *load) inFlight() float64 {
	ended := uint32(l.ends.Load()) // first: a call ends after it starts
	return float64(uint32(l.started.Load()) - ended)
}

// estimate returns the latency estimate in nanoseconds and when its last
// sample was taken; measured is 0 before the first sample.
func (l *load) estimate() (latency float64, measured int64) {
	measured = l.measured.Load()
	return math.Float64frombits(l.latency.Load()), measured
}

// sampleKind says what a call's duration tells of its endpoint's latency.
type sampleKind uint8

const (
	sampleAnswer  sampleKind = iota // an answer: the latency itself
	sampleBound                     // the caller gave up, or an unjudged code: at least this long
	samplePenalty                   // a failure or a refusal: as bad as twice the estimate, or this long
)

// observe adds a sample of the given kind taken at now to the estimate. A
// bound or a penalty never lowers the estimate, and a penalty is not a
// first sample: a fast failure must not make an endpoint look fast. A
// bound is (an endpoint whose calls are all cancelled, hedges' losers,
// must still be judged).
func (l *load) observe(now int64, sample float64, kind sampleKind, decay float64) {
	if kind == samplePenalty && l.measured.Load() == 0 {
		return // a failure tells no latency: the first sample is another call's
	}
	if kind == sampleAnswer && l.answers1.Load() < warmSamples {
		if n := l.answers1.Add(1); n <= warmSamples {
			if l.measured.Swap(now) == 0 || sample < math.Float64frombits(l.latency.Load()) {
				l.latency.Store(math.Float64bits(sample))
			}
			return
		}
	}
	last := l.measured.Swap(now) // each span of time weighs in once
	if last == 0 {
		l.latency.Store(math.Float64bits(sample))
		return
	}
	dt := float64(max(now-last, 0))
	w := dt / (dt + decay) // 1 - e^(-dt/decay), to first order, and below 1
	for {
		old := l.latency.Load()
		est := math.Float64frombits(old)
		x := sample
		switch kind {
		case sampleBound:
			x = max(sample, est)
		case samplePenalty:
			x = max(sample, min(2*est, float64(maxSample))) // never past maxSample: no runaway to infinity
		}
		if l.latency.CompareAndSwap(old, math.Float64bits(est+w*(x-est))) {
			return
		}
	}
}

// outcomes are an endpoint's running totals of calls that did not succeed,
// written by Done on those paths only; the control loop takes differences
// each tick, so nothing is lost around a tick. Successes are not counted: the
// control loop derives each endpoint's picks from the pick counter and the
// schedule.
type outcomes struct {
	failure atomic.Int64 // FailureCodes, and DEADLINE_EXCEEDED judged silent
	demote  atomic.Int64 // DemoteCodes, and DEADLINE_EXCEEDED judged busy
	ignored atomic.Int64 // cancelled, or never sent (grpc-go re-picks)
	_       [64 - 3*8]byte
}

// call is the record of a call picked under deadline_exceeded when_silent
// or load_aware: its endpoint, how many answers the endpoint had given at
// the pick, and when it was picked. Records are pooled (tracker.calls), so
// Pick allocates nothing; grpc-go calls Done at most once, and finish puts
// the record back first thing.
type call struct {
	ep      *endpoint
	answers uint64
	start   int64
	done    func(balancer.DoneInfo) // c.finish, allocated once per record
}

// newCall returns the Done of a call picked on ep at now (0: not
// measured); judged says whether its timeout is judged by answers.
func (t *tracker) newCall(ep *endpoint, now int64, judged bool) func(balancer.DoneInfo) {
	c := t.calls.Get().(*call)
	c.ep, c.answers, c.start = ep, noRecord, now
	if judged {
		c.answers = answersOf(ep.load.ends.Load())
	}
	return c.done
}

func (c *call) finish(di balancer.DoneInfo) {
	ep, answers, start := c.ep, c.answers, c.start
	c.ep = nil
	ep.t.calls.Put(c)
	ep.record(di, answers, start)
}

// noRecord stands for the answer count of a call whose timeout is not
// judged by answers (not picked under when_silent).
const noRecord = math.MaxUint64

// record counts the outcome of a call on ep; answers is ep's answer count
// at its pick, or noRecord; start is when it was picked, or 0 when it is not
// measured. A failure that makes ConsecutiveFailures in a row marks the
// endpoint (Pick skips it from then on) and wakes the control loop, which
// ejects it if the ejection limit allows. Lock-free and allocation-free.
func (ep *endpoint) record(di balancer.DoneInfo, answers uint64, start int64) {
	if di.Err == nil {
		if !di.BytesSent && !di.BytesReceived {
			// grpc-go re-picks when the transport was not ready: no outcome.
			ep.out.ignored.Add(1)
			ep.load.ends.Add(oneEnd)
			return
		}
		ep.answered()
		ep.measure(start, sampleAnswer)
		return
	}
	cfg := ep.t.snap.Load().cfg
	code := status.Code(di.Err)
	end := uint64(oneEnd)
	kind := samplePenalty
	switch {
	case code == codes.DeadlineExceeded && cfg.failure.Has(code) && cfg.DeadlineExceeded == statuscode.DeadlineIgnore:
		ep.out.ignored.Add(1)
		kind = sampleBound
	case code == codes.DeadlineExceeded && cfg.whenSilent && answers != noRecord && answersOf(ep.load.ends.Load()) != answers:
		// It answered since the pick: busy, not down. Shift load away,
		// never eject, leave the run of failures alone.
		ep.out.demote.Add(1)
	case cfg.failure.Has(code):
		ep.out.failure.Add(1)
		n := ep.consecutive.Add(1)
		if limit := cfg.ConsecutiveFailures; limit > 0 && n >= int32(limit) && !ep.marked.Load() && ep.marked.CompareAndSwap(false, true) {
			select {
			case ep.t.ejectCh <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	case cfg.demote.Has(code):
		ep.out.demote.Add(1)
		if statuscode.IsAnswer(code) { // RESOURCE_EXHAUSTED
			ep.endRun()
			end += oneAnswer
		}
	case statuscode.IsAnswer(code):
		// An application error: the endpoint answered, and did the work.
		ep.answered()
		ep.measure(start, sampleAnswer)
		return
	default:
		// CANCELLED (the caller gave up), or UNAVAILABLE or
		// DEADLINE_EXCEEDED in neither list: says nothing of its health.
		ep.out.ignored.Add(1)
		kind = sampleBound
	}
	ep.load.ends.Add(end) // after the outcome: see closeBucketLocked
	ep.measure(start, kind)
}

// measure adds the duration of a call picked at start (0: not measured) to
// the endpoint's estimate as a sample of the given kind (load.observe).
// Durations above maxSample are not latencies (long-lived streams, which
// also end in Done) and are left out.
func (ep *endpoint) measure(start int64, kind sampleKind) {
	if start == 0 {
		return
	}
	now := ep.t.clock.Nanos()
	d := now - start
	if d > maxSample {
		if kind != samplePenalty {
			return // a long-lived stream, or a call given up after long: no latency
		}
		d = maxSample // a failure after long: as bad as a sample gets
	}
	ep.load.observe(now, float64(d), kind, ep.t.snap.Load().cfg.decay)
}

// maxSample is the longest call duration taken as a latency sample, and the
// highest estimate a failure's penalty leads to.
const maxSample = int64(10 * time.Second)

// answered records an answer: it ends the run of consecutive failures and
// counts the call's end as an answer, which the records of the calls still
// out compare with.
func (ep *endpoint) answered() {
	ep.endRun()
	ep.load.ends.Add(oneEnd + oneAnswer) // after the outcome: see closeBucketLocked
}

// endRun ends the run of consecutive failures.
func (ep *endpoint) endRun() {
	if ep.consecutive.Load() != 0 { // avoid writing a shared line on every success
		ep.consecutive.Store(0)
	}
}
