package balancer

import (
	"math"
	"sync/atomic"

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
	slots    []int   // slots of each entry in table, to derive pick counts
	panic    bool    // routing over every READY endpoint, ejected or not
	fallback balancer.Picker
}

type entry struct {
	ep     *endpoint
	picker balancer.Picker // the endpoint's pick_first picker (READY)
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
	idx := int(s.table[p.t.next.Add(1)%n])
	e := &s.entries[idx]
	if !s.panic && e.ep.marked.Load() {
		e = s.unmarked(idx)
	}
	res, err := e.picker.Pick(info)
	if err != nil {
		return res, err
	}
	record := e.ep.done
	if s.cfg.whenSilent {
		record = p.t.newCall(e.ep)
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

// call is the record of a call picked under deadline_exceeded when_silent:
// its endpoint, and how many answers the endpoint had given at the pick.
// Records are pooled (tracker.calls), so Pick allocates nothing; grpc-go
// calls Done at most once, and finish puts the record back first thing.
type call struct {
	ep      *endpoint
	answers uint64
	done    func(balancer.DoneInfo) // c.finish, allocated once per record
}

// newCall returns the Done of a call picked on ep, which judges a timeout
// by whether ep answered since this pick.
func (t *tracker) newCall(ep *endpoint) func(balancer.DoneInfo) {
	c := t.calls.Get().(*call)
	c.ep, c.answers = ep, ep.answers.Load()
	return c.done
}

func (c *call) finish(di balancer.DoneInfo) {
	ep, answers := c.ep, c.answers
	c.ep = nil
	ep.t.calls.Put(c)
	ep.record(di, answers)
}

// noRecord stands for the answer count of a call picked without a record
// (not under when_silent).
const noRecord = math.MaxUint64

// record counts the outcome of a call on ep; answers is ep.answers at its
// pick, or noRecord. A failure that makes ConsecutiveFailures in a row marks
// the endpoint (Pick skips it from then on) and wakes the control loop,
// which ejects it if the ejection limit allows. Lock-free, allocation-free,
// reads no clock; a success adds to the answer count if the call has a
// record, and otherwise only reads.
func (ep *endpoint) record(di balancer.DoneInfo, answers uint64) {
	if di.Err == nil {
		if !di.BytesSent && !di.BytesReceived {
			// grpc-go re-picks when the transport was not ready: no outcome.
			ep.out.ignored.Add(1)
			return
		}
		ep.answered(answers)
		return
	}
	cfg := ep.t.snap.Load().cfg
	code := status.Code(di.Err)
	switch {
	case code == codes.DeadlineExceeded && cfg.failure.Has(code) && cfg.DeadlineExceeded == statuscode.DeadlineIgnore:
		ep.out.ignored.Add(1)
	case code == codes.DeadlineExceeded && cfg.whenSilent && answers != noRecord && ep.answers.Load() != answers:
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
			ep.answered(answers)
		}
	case statuscode.IsAnswer(code):
		// An application error: the endpoint answered.
		ep.answered(answers)
	default:
		// CANCELLED (the caller gave up), or UNAVAILABLE or
		// DEADLINE_EXCEEDED in neither list: says nothing.
		ep.out.ignored.Add(1)
	}
}

// answered records an answer: it ends the run of consecutive failures and,
// for a call with a record, adds one to the count that the records of the
// calls still out compare with.
func (ep *endpoint) answered(answers uint64) {
	if answers != noRecord {
		ep.answers.Add(1)
	}
	if ep.consecutive.Load() != 0 { // avoid writing a shared line on every success
		ep.consecutive.Store(0)
	}
}
