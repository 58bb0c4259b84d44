package overloadsim

import (
	"context"
	"fmt"
	"time"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// The scenario of issue 15: a resource with room for 4 calls at a time of
// 5ms each (800 calls/s), 4 clients, a 100ms deadline per call.
const (
	Slots    = 4
	Hold     = 5 * time.Millisecond
	Callers  = 4
	Deadline = 100 * time.Millisecond
)

// Capacity is the resource's nominal capacity in calls per second; see
// MeasureCapacity for what it serves on this machine.
var Capacity = float64(Slots) / Hold.Seconds()

// Multiples are the loads of the levels scenario, in times the capacity.
var Multiples = []float64{0.5, 1, 3, 10}

// fixture is a backend of kind k in front of a fresh resource per hold,
// and Callers clients of it.
type fixture struct {
	backends []*Backend
	clients  *Clients
}

func start(k Kind, holds ...time.Duration) (*fixture, error) {
	f := &fixture{}
	var addrs []string
	for i, h := range holds {
		b, err := StartBackend(k, NewResource(Slots, h), fmt.Sprintf("backend-%d", i))
		if err != nil {
			f.stop()
			return nil, err
		}
		f.backends = append(f.backends, b)
		addrs = append(addrs, b.Addr)
	}
	c, err := Dial(k, Callers, addrs)
	if err != nil {
		f.stop()
		return nil, err
	}
	f.clients = c
	return f, nil
}

func (f *fixture) stop() {
	if f.clients != nil {
		f.clients.Close()
	}
	for _, b := range f.backends {
		b.Stop()
	}
}

func (f *fixture) stubs() []testpbv1.TestServiceClient { return f.clients.Stubs }

// constant is a rate that does not change.
func constant(r float64) func(time.Duration) float64 { return func(time.Duration) float64 { return r } }

// Level runs the scenario at multiple times the capacity for d with a
// fresh server and clients of kind k, and summarizes the whole run: the
// first calls included, as a user's load test would count them.
func Level(ctx context.Context, k Kind, multiple float64, d time.Duration) (Summary, error) {
	f, err := start(k, Hold)
	if err != nil {
		return Summary{}, err
	}
	defer f.stop()
	calls := Load{Rate: constant(multiple * Capacity), For: d, Deadline: Deadline}.Run(ctx, f.stubs())
	return Summarize(calls, 0, d), nil
}

// Point is one sample of a timeline.
type Point struct {
	At      time.Duration
	Summary Summary
	Limit   int // the server's concurrency limit at the end of the slice (kit now only)
}

// Halving runs a load of twice the capacity for d and doubles the time
// each call holds the resource (halving the capacity) at d/2. It returns
// the run cut into slices of step.
func Halving(ctx context.Context, k Kind, d, step time.Duration) ([]Point, error) {
	f, err := start(k, Hold)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	b := f.backends[0]
	limits := map[time.Duration]int{}
	load := Load{Rate: constant(2 * Capacity), For: d, Deadline: Deadline, Every: func(t time.Duration) {
		if t >= d/2 && b.Res.hold.Load() == int64(Hold) {
			b.Res.SetHold(2 * Hold)
		}
		if b.Overload != nil {
			limits[t/step*step] = b.Overload.Limiter().Limit()
		}
	}}
	calls := load.Run(ctx, f.stubs())
	var out []Point
	for at := time.Duration(0); at < d; at += step {
		out = append(out, Point{At: at, Summary: Summarize(calls, at, at+step), Limit: limits[at]})
	}
	return out, nil
}

// Spread is the outcome of the three-backends scenario.
type Spread struct {
	Summary Summary
	OK      []int // OK calls each backend answered
}

// ThreeBackends runs a load of 1500 calls/s for d over three backends, the
// first of which serves 200 calls/s (its calls hold the resource 20ms)
// and the others 800: spread evenly, the first gets 2.5 times its
// capacity.
func ThreeBackends(ctx context.Context, k Kind, d time.Duration) (Spread, error) {
	f, err := start(k, 4*Hold, Hold, Hold)
	if err != nil {
		return Spread{}, err
	}
	defer f.stop()
	calls := Load{Rate: constant(1500), For: d, Deadline: Deadline}.Run(ctx, f.stubs())
	s := Spread{Summary: Summarize(calls, 0, d), OK: make([]int, len(f.backends))}
	for _, c := range calls {
		var i int
		if _, err := fmt.Sscanf(c.Server, "backend-%d", &i); err == nil {
			s.OK[i]++
		}
	}
	return s, nil
}

// SpikeResult is the outcome of the spike scenario.
type SpikeResult struct {
	Before, During, After Summary
	// Recovery is how long after the spike the last call that failed
	// started: from then on every call succeeded.
	Recovery time.Duration
	// Timeline is the whole run cut into slices of SpikeStep.
	Timeline []Point
}

// SpikeStep is the length of the slices of [SpikeResult.Timeline].
const SpikeStep = 250 * time.Millisecond

// SpikeRate is the offered load of [Spike], in calls/s at t.
func SpikeRate(phase time.Duration) func(t time.Duration) float64 {
	return func(t time.Duration) float64 {
		if t >= phase && t < 2*phase {
			return 3 * Capacity
		}
		return Capacity / 2
	}
}

// Spike runs half the capacity for phase, then three times the capacity
// for phase, then half again for phase.
func Spike(ctx context.Context, k Kind, phase time.Duration) (SpikeResult, error) {
	f, err := start(k, Hold)
	if err != nil {
		return SpikeResult{}, err
	}
	defer f.stop()
	calls := Load{Rate: SpikeRate(phase), For: 3 * phase, Deadline: Deadline}.Run(ctx, f.stubs())
	r := SpikeResult{
		Before: Summarize(calls, 0, phase),
		During: Summarize(calls, phase, 2*phase),
		After:  Summarize(calls, 2*phase, 3*phase),
	}
	for _, c := range calls {
		if c.Start >= 2*phase && c.Code != 0 {
			r.Recovery = c.Start - 2*phase
		}
	}
	for at := time.Duration(0); at < 3*phase; at += SpikeStep {
		r.Timeline = append(r.Timeline, Point{At: at, Summary: Summarize(calls, at, at+SpikeStep)})
	}
	return r, nil
}

// Healthy runs 2000 calls/s for d against a server without a capacity
// limit whose calls take 1ms, and 50ms one time in ten: nothing should be
// refused, however the limiter reads such varied latencies.
//
// It returns the warm-up (see HealthyWarmup) and the rest apart.
func Healthy(ctx context.Context, k Kind, d time.Duration) (warmup, rest Summary, err error) {
	b, err := startBackend(k, &Varied{Fast: time.Millisecond, Slow: 50 * time.Millisecond, Every: 10}, "varied")
	if err != nil {
		return Summary{}, Summary{}, err
	}
	defer b.Stop()
	c, err := Dial(k, Callers, []string{b.Addr})
	if err != nil {
		return Summary{}, Summary{}, err
	}
	defer c.Close()
	calls := Load{Rate: constant(2000), For: d, Deadline: Deadline}.Run(ctx, c.Stubs)
	return Summarize(calls, 0, HealthyWarmup), Summarize(calls, HealthyWarmup, d), nil
}

// HealthyWarmup is the start of the healthy scenario in which the limit
// may still be finding its level: a server that starts with more calls at
// once than initial_limit refuses some of them while it probes its latency
// and slow start raises the limit (about 100ms).
const HealthyWarmup = 500 * time.Millisecond
