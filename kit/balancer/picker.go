package balancer

import (
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// snapshot is what the hot path reads: an immutable pick table over the
// usable READY endpoints, published through tracker.snap. Only budget is
// written after publication (atomically, by Done).
type snapshot struct {
	cfg      *Config
	entries  []entry // endpoints that can be picked, each with its child picker
	table    []int32 // schedule over entries; empty when no endpoint is READY
	slots    []int   // slots of each entry in table, to derive pick counts
	panic    bool    // routing over every READY endpoint, ejected or not
	fallback balancer.Picker
	// budget is how many more endpoints Done may eject before the control
	// loop republishes: maxEjectionPercent minus those already ejected.
	budget *atomic.Int32
}

type entry struct {
	ep     *endpoint
	picker balancer.Picker // the endpoint's pick_first picker (READY)
}

// picker reads the tracker's current snapshot on every pick, so the control
// loop changes weights without a new picker.
type picker struct{ t *tracker }

// maxProbe bounds how many table slots Pick looks at to skip endpoints that
// Done has just marked for ejection (before the control loop republishes).
const maxProbe = 4

// Pick is lock-free, O(1) in the number of endpoints and allocation-free
// (when the child picker sets no Done of its own).
func (p picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	s := p.t.snap.Load()
	n := uint64(len(s.table))
	if n == 0 {
		return s.fallback.Pick(info)
	}
	i := p.t.next.Add(1)
	e := &s.entries[s.table[i%n]]
	for k := uint64(1); k < maxProbe && !s.panic && e.ep.ejecting.Load(); k++ {
		e = &s.entries[s.table[(i+k)%n]]
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

// bucket counts the failing outcomes of one tick; the control loop swaps in
// a fresh one each tick. Successes are not counted here: the control loop
// derives each endpoint's picks from the pick counter and the schedule, so a
// successful call writes nothing that other cores share.
type bucket struct {
	failure, demote atomic.Int64
	_               [64 - 2*8]byte // own cache line
}

// record is an endpoint's Done: it counts a failing outcome in the current
// bucket. A failure that makes ConsecutiveFailures in a row marks the
// endpoint for ejection at once (Pick skips it from then on) and wakes the
// control loop. Lock-free, allocation-free, reads no clock; a success only
// reads.
func (ep *endpoint) record(di balancer.DoneInfo) {
	if di.Err == nil {
		ep.resetConsecutive()
		return
	}
	s := ep.t.snap.Load()
	code := status.Code(di.Err)
	switch {
	case s.cfg.failure.has(code):
		ep.cur.Load().failure.Add(1)
		n := ep.consecutive.Add(1)
		if limit := s.cfg.ConsecutiveFailures; limit > 0 && n >= int32(limit) && !ep.ejecting.Load() {
			ep.t.ejectNow(ep, s)
		}
	case s.cfg.demote.has(code):
		ep.cur.Load().demote.Add(1)
	case code == codes.Canceled:
		// The caller gave up: says nothing about the endpoint.
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
