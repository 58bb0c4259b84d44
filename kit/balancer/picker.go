package balancer

import (
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	if res.Done == nil {
		res.Done = e.ep.done
	} else {
		childDone, record := res.Done, e.ep.done
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
// schedule, so a successful call writes nothing that other cores share.
type outcomes struct {
	failure atomic.Int64 // FailureCodes
	demote  atomic.Int64 // DemoteCodes
	ignored atomic.Int64 // cancelled, or never sent (grpc-go re-picks)
	_       [64 - 3*8]byte
}

// record is an endpoint's Done. A failure that makes ConsecutiveFailures in
// a row marks the endpoint (Pick skips it from then on) and wakes the control
// loop, which ejects it if the ejection limit allows. Lock-free,
// allocation-free, reads no clock; a success only reads.
func (ep *endpoint) record(di balancer.DoneInfo) {
	if di.Err == nil {
		if !di.BytesSent && !di.BytesReceived {
			// grpc-go re-picks when the transport was not ready: no outcome.
			ep.out.ignored.Add(1)
			return
		}
		ep.resetConsecutive()
		return
	}
	cfg := ep.t.snap.Load().cfg
	code := status.Code(di.Err)
	switch {
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
	case code == codes.Canceled:
		// The caller gave up: says nothing about the endpoint.
		ep.out.ignored.Add(1)
	default:
		// An application error: the endpoint answered.
		ep.resetConsecutive()
	}
}

func (ep *endpoint) resetConsecutive() {
	if ep.consecutive.Load() != 0 { // avoid writing a shared line on every success
		ep.consecutive.Store(0)
	}
}
