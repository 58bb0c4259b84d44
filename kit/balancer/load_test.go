package balancer

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestLatencyEstimate(t *testing.T) {
	const decay = float64(500 * time.Millisecond)
	var l load
	if _, measured := l.estimate(); measured != 0 {
		t.Fatal("a new endpoint is measured")
	}
	at := int64(1e9)
	// A failure is no first sample; a cancelled call is.
	l.observe(at, 1e3, samplePenalty, decay)
	if _, measured := l.estimate(); measured != 0 {
		t.Fatal("a failure measured a new endpoint")
	}
	var cancelled load
	cancelled.observe(at, 2e6, sampleBound, decay)
	if est, measured := cancelled.estimate(); est != 2e6 || measured != at {
		t.Errorf("after a cancelled first call: %v at %d, want 2ms", est, measured)
	}
	l.observe(at, 40e6, sampleAnswer, decay)
	if est, measured := l.estimate(); est != 40e6 || measured != at {
		t.Fatalf("after the first sample: %v at %d, want 40ms at %d", est, measured, at)
	}
	// The first warmSamples answers keep the least: a first call slowed by
	// a new connection does not stick.
	for i := range warmSamples - 1 {
		at += int64(decay)
		l.observe(at, float64(4e6+i*1e6), sampleAnswer, decay)
	}
	if est, _ := l.estimate(); est != 4e6 {
		t.Fatalf("after %d answers, the least 4ms: %v", warmSamples, est)
	}
	// Then a moving average: each step is a sample taken dt after the last.
	for _, step := range []struct {
		what   string
		dt     float64
		sample float64
		kind   sampleKind
		want   float64
	}{
		{"an answer LatencyDecay later moves it half way", decay, 2e6, sampleAnswer, 3e6},
		{"an answer at the same moment moves it nothing", 0, 100e6, sampleAnswer, 3e6},
		{"an answer LatencyDecay/10 later moves it 1/11 of the gap", decay / 10, 14e6, sampleAnswer, 4e6},
		{"a fast cancel never lowers it", decay, 1e6, sampleBound, 4e6},
		{"a slow cancel raises it", decay, 8e6, sampleBound, 6e6},
		{"a failure counts as twice the estimate, however fast", decay, 1e3, samplePenalty, 9e6},
	} {
		at += int64(step.dt)
		l.observe(at, step.sample, step.kind, decay)
		if est, _ := l.estimate(); math.Abs(est-step.want) > 1 {
			t.Errorf("%s: %v, want %v", step.what, est, step.want)
		}
	}
	// An endpoint that fails for ever (never ejected: RESOURCE_EXHAUSTED,
	// the ejection limit) is penalized up to maxSample, never to infinity.
	for range 10000 {
		at += int64(decay)
		l.observe(at, 1e3, samplePenalty, decay)
	}
	if est, _ := l.estimate(); !(est > float64(maxSample)/2 && est <= float64(maxSample)) {
		t.Errorf("after 10000 failures: %v, want near maxSample (%v)", est, float64(maxSample))
	}
	// And it recovers from there: answers bring it down.
	for range 20 {
		at += int64(decay)
		l.observe(at, 1e6, sampleAnswer, decay)
	}
	if est, _ := l.estimate(); est > 2e6 {
		t.Errorf("after 20 answers of 1ms a decay apart: %v, want near 1ms", est)
	}
}

// inFlight returns the calls in flight on addr, as /debug/kit shows them.
func (h *harness) inFlight(addr string) int64 {
	h.t.Helper()
	for _, es := range h.tr.stats().Endpoints {
		if es.Addresses == addr {
			return es.InFlight
		}
	}
	h.t.Fatalf("no endpoint %s", addr)
	return 0
}

// Every pick holds a slot until its Done, whatever the outcome; a pick the
// child picker failed holds none.
func TestInFlightAccounting(t *testing.T) {
	h := newHarness(t, `{}`, 1, 1)
	var dones []func(balancer.DoneInfo)
	for range 6 {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, res.Done)
	}
	if a, b := h.inFlight("e0"), h.inFlight("e1"); a != 3 || b != 3 {
		t.Fatalf("in flight after 6 picks: %d and %d, want 3 and 3", a, b)
	}
	for i, di := range []balancer.DoneInfo{
		doneInfo(nil),
		doneInfo(status.Error(codes.Unavailable, "down")),
		doneInfo(status.Error(codes.Canceled, "caller gave up")),
		doneInfo(status.Error(codes.DeadlineExceeded, "late")),
		doneInfo(status.Error(codes.NotFound, "application error")),
		{}, // never sent: grpc-go picks again
	} {
		dones[i](di)
	}
	if a, b := h.inFlight("e0"), h.inFlight("e1"); a != 0 || b != 0 {
		t.Errorf("in flight after every Done: %d and %d, want 0", a, b)
	}

	// The child picker of e1 fails its picks: they hold no slot.
	h.pickers["e1"] = errPicker{errors.New("child picker failed")}
	h.pushStates()
	failed := 0
	for range 10 {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			failed++
			continue
		}
		res.Done(doneInfo(nil))
	}
	if failed == 0 {
		t.Fatal("no pick reached e1's failing child picker")
	}
	if got := h.inFlight("e1"); got != 0 {
		t.Errorf("in flight on e1 after %d failed picks: %d, want 0", failed, got)
	}
}

// call picks once, lets the call take latency(addr) of the manual clock,
// and reports success.
func (h *harness) call(latency func(addr string) time.Duration) string {
	h.t.Helper()
	res, err := picker{h.tr}.Pick(balancer.PickInfo{})
	if err != nil {
		h.t.Fatalf("Pick: %v", err)
	}
	addr := res.SubConn.(*fakeSubConn).addr
	h.clock.Advance(latency(addr))
	res.Done(doneInfo(nil))
	return addr
}

// run makes n calls one after the other, ticking the control loop once a
// second of the manual clock, and returns the calls per endpoint.
func (h *harness) run(n int, latency func(addr string) time.Duration) map[string]int {
	h.t.Helper()
	got := map[string]int{}
	next := h.clock.Now().Add(time.Second)
	for range n {
		got[h.call(latency)]++
		if now := h.clock.Now(); !now.Before(next) {
			h.tr.tick()
			next = now.Add(time.Second)
		}
	}
	return got
}

// A slow endpoint gets almost nothing but its probes; when it is fast
// again, it wins its share back within seconds.
func TestSlowEndpointLosesItsShareAndWinsItBack(t *testing.T) {
	h := newHarness(t, `{}`, 1, 1, 1, 1, 1)
	slow := true
	latency := func(addr string) time.Duration {
		if addr == "e0" && slow {
			return 40 * time.Millisecond
		}
		return time.Millisecond
	}
	h.run(1000, latency) // learn
	got := h.run(2000, latency)
	// At one call per ms of the manual clock, 2000 calls span about 2 s:
	// about 10 probes of e0.
	if share := float64(got["e0"]) / 2000; share > 0.02 {
		t.Errorf("the slow endpoint got %d of 2000 calls (%.1f%%), want at most 2%%", got["e0"], 100*share)
	}
	if got["e0"] == 0 {
		t.Error("the slow endpoint got no probe")
	}

	slow = false
	start := h.clock.Now()
	for {
		got := h.run(500, latency)
		if got["e0"] >= 50 { // half of its fair share of 20%
			t.Logf("back to %d of 500 calls %v after it became fast", got["e0"], h.clock.Now().Sub(start))
			break
		}
		if h.clock.Now().Sub(start) > 5*time.Second {
			t.Fatalf("5s after it became fast, the endpoint gets %d of 500 calls, want at least 50", got["e0"])
		}
	}
}

// At equal latencies the weighted shares stay exact, one call at a time
// or with calls in flight; with calls in flight they stay within a point.
func TestWeightsAtEqualLatency(t *testing.T) {
	h := newHarness(t, `{}`, 1, 2, 3)
	ms := func(string) time.Duration { return time.Millisecond }
	h.run(600, ms)
	if got := h.run(6000, ms); got["e0"] != 1000 || got["e1"] != 2000 || got["e2"] != 3000 {
		t.Errorf("one call at a time: %v, want 1000:2000:3000", got)
	}

	// 12 calls in flight, each ending after the 12 picks that follow it,
	// 1 ms of the manual clock apart.
	const inFlight, n = 12, 60000
	got := map[string]int{}
	var out []func(balancer.DoneInfo)
	for range n {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		got[res.SubConn.(*fakeSubConn).addr]++
		out = append(out, res.Done)
		h.clock.Advance(time.Millisecond)
		if len(out) == inFlight {
			out[0](doneInfo(nil))
			out = out[1:]
		}
	}
	for i, w := range []float64{1, 2, 3} {
		addr := fmt.Sprintf("e%d", i)
		if share := float64(got[addr]) / n; math.Abs(share-w/6) > 0.01 {
			t.Errorf("with %d calls in flight, %s (weight %v) got %.2f%%, want %.2f%% ± 1", inFlight, addr, w, 100*share, 100*w/6)
		}
	}
}

// An endpoint whose calls do not end gets fewer new ones, without any
// latency difference; with load_aware off it keeps its share.
func TestCallsInFlightShiftLoad(t *testing.T) {
	for _, tc := range []struct {
		config    string
		wantFewer bool
	}{{`{}`, true}, {`{"load_aware": false}`, false}} {
		h := newHarness(t, tc.config, 1, 1)
		h.run(100, func(string) time.Duration { return time.Millisecond })
		// From now on e0's calls do not end; e1's take 1 ms.
		got := map[string]int{}
		for range 1000 {
			res, err := picker{h.tr}.Pick(balancer.PickInfo{})
			if err != nil {
				t.Fatal(err)
			}
			addr := res.SubConn.(*fakeSubConn).addr
			got[addr]++
			if addr == "e1" {
				h.clock.Advance(time.Millisecond)
				res.Done(doneInfo(nil))
			}
		}
		if fewer := got["e0"] < 100; fewer != tc.wantFewer {
			t.Errorf("%s: e0, whose calls do not end, got %d of 1000 calls; fewer than 100: %v, want %v", tc.config, got["e0"], fewer, tc.wantFewer)
		}
	}
}

// An endpoint that refuses at once while the others have calls in flight
// loses its share instead of drawing the calls.
func TestFastRefusalsShedLoad(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 1000000}`, 1, 1, 1)
	// Each call takes 4 ms and 8 are in flight; then e0 refuses every
	// call at once with RESOURCE_EXHAUSTED. No tick runs: no demotion,
	// only the latency estimates.
	got := map[string]int{}
	var out []func(balancer.DoneInfo)
	refusing := false
	for i := range 20000 {
		if i == 4000 {
			refusing = true
		}
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		addr := res.SubConn.(*fakeSubConn).addr
		if refusing && addr == "e0" {
			res.Done(doneInfo(status.Error(codes.ResourceExhausted, "busy")))
		} else {
			out = append(out, res.Done)
		}
		if i >= 16000 {
			got[addr]++
		}
		h.clock.Advance(500 * time.Microsecond)
		if len(out) == 8 {
			out[0](doneInfo(nil))
			out = out[1:]
		}
	}
	if share := float64(got["e0"]) / 4000; share > 0.2 {
		t.Errorf("the refusing endpoint got %.1f%% of the last 4000 calls, want well under its third", 100*share)
	}
}

// A failure as fast as you like does not make an endpoint look fast.
func TestFastFailuresDoNotAttract(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 1000000, "demote_codes": []}`, 1, 1)
	// Both take 5 ms; then e0 refuses at once, e1 still takes 5 ms.
	h.run(800, func(string) time.Duration { return 5 * time.Millisecond })
	before, _ := h.ep("e0").load.estimate()
	for range 800 {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if res.SubConn.(*fakeSubConn).addr == "e0" {
			res.Done(doneInfo(status.Error(codes.Unavailable, "refused")))
			continue
		}
		h.clock.Advance(5 * time.Millisecond)
		res.Done(doneInfo(nil))
	}
	if after, _ := h.ep("e0").load.estimate(); after < before {
		t.Errorf("e0's estimate fell from %v to %v on instant failures", time.Duration(before), time.Duration(after))
	}
}

// The live config switches load awareness and its parameters.
func TestLoadAwareConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"load_aware": false, "latency_decay": "2s", "load_margin": 0.1, "probe_interval": "1s", "latency_floor": "1ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.LoadAware || time.Duration(c.LatencyDecay) != 2*time.Second || c.LoadMargin != 0.1 || time.Duration(c.ProbeInterval) != time.Second ||
		c.decay != float64(2*time.Second) || c.keep != 0.9 || c.probe != int64(time.Second) || c.floor != float64(time.Millisecond) {
		t.Errorf("parsed %+v", c)
	}
	d := DefaultConfig()
	if !d.LoadAware || time.Duration(d.LatencyDecay) != 500*time.Millisecond || d.LoadMargin != 0.5 || time.Duration(d.ProbeInterval) != 200*time.Millisecond ||
		time.Duration(d.LatencyFloor) != 200*time.Microsecond {
		t.Errorf("defaults %+v", d)
	}
}
