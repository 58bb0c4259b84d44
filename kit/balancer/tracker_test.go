package balancer

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// fakeClock is a manual clock; its ticker is never used by these tests,
// which call tracker.tick themselves.
type fakeClock struct{ *fakeclock.Clock }

func (c *fakeClock) NewTicker(time.Duration) ticker { return manualTicker{make(chan time.Time)} }

type manualTicker struct{ c chan time.Time }

func (m manualTicker) C() <-chan time.Time { return m.c }
func (m manualTicker) Stop()               {}

// fakeSubConn identifies the endpoint a pick went to.
type fakeSubConn struct {
	balancer.SubConn
	addr string
}

// subConnPicker is a READY pick_first child's picker.
type subConnPicker struct{ sc *fakeSubConn }

func (p subConnPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.sc}, nil
}

// harness drives a tracker over fake endpoints named e0, e1, ...
type harness struct {
	t       *testing.T
	clock   *fakeClock
	tr      *tracker
	eps     []resolver.Endpoint
	ready   map[string]bool
	pickers map[string]balancer.Picker
}

func newHarness(t *testing.T, cfgJSON string, weights ...uint32) *harness {
	t.Helper()
	cfg, err := ParseConfig([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: &fakeClock{fakeclock.New(time.Unix(1e9, 0))}, ready: map[string]bool{}, pickers: map[string]balancer.Picker{}}
	h.tr = newTracker(cfg, h.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), "test", new(Events))
	h.tr.setConfig(cfg)
	for i, w := range weights {
		addr := fmt.Sprintf("e%d", i)
		h.eps = append(h.eps, weight.Set(resolver.Endpoint{Addresses: []resolver.Address{{Addr: addr}}}, weight.EndpointInfo{Weight: w}))
		h.ready[addr] = true
		h.pickers[addr] = subConnPicker{&fakeSubConn{addr: addr}}
	}
	h.tr.setEndpoints(h.eps)
	h.pushStates()
	return h
}

func (h *harness) pushStates() {
	var states []endpointsharding.ChildState
	for _, e := range h.eps {
		st := connectivity.TransientFailure
		if h.ready[e.Addresses[0].Addr] {
			st = connectivity.Ready
		}
		states = append(states, endpointsharding.ChildState{Endpoint: e, State: balancer.State{ConnectivityState: st, Picker: h.pickers[e.Addresses[0].Addr]}})
	}
	h.tr.setChildStates(states, errPicker{balancer.ErrNoSubConnAvailable})
}

func (h *harness) setReady(addr string, ready bool) {
	h.ready[addr] = ready
	h.pushStates()
}

// pick picks once and reports the outcome err to Done.
func (h *harness) pick(err error) string {
	h.t.Helper()
	res, perr := picker{h.tr}.Pick(balancer.PickInfo{})
	if perr != nil {
		h.t.Fatalf("Pick: %v", perr)
	}
	res.Done(doneInfo(err))
	return res.SubConn.(*fakeSubConn).addr
}

// doneInfo is what grpc-go reports for a call that reached the server.
func doneInfo(err error) balancer.DoneInfo {
	return balancer.DoneInfo{Err: err, BytesSent: true, BytesReceived: true}
}

// counts picks n times (all succeeding) and counts picks per endpoint.
func (h *harness) counts(n int) map[string]int {
	got := map[string]int{}
	for range n {
		got[h.pick(nil)]++
	}
	return got
}

// shares picks n times without reporting outcomes and counts picks per endpoint.
func (h *harness) shares(n int) map[string]int {
	h.t.Helper()
	got := map[string]int{}
	for range n {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			h.t.Fatalf("Pick: %v", err)
		}
		got[res.SubConn.(*fakeSubConn).addr]++
	}
	return got
}

func (h *harness) ep(addr string) *endpoint {
	h.t.Helper()
	for _, ep := range h.tr.order {
		if ep.name == addr {
			return ep
		}
	}
	h.t.Fatalf("no endpoint %s", addr)
	return nil
}

// record makes k calls that land on addr and end with code, through Pick
// and Done; calls the schedule sends elsewhere meanwhile succeed.
func (h *harness) record(addr string, k int, code codes.Code) {
	h.t.Helper()
	var err error
	if code != codes.OK {
		err = status.Error(code, "injected")
	}
	for range k {
		for tries := 0; ; tries++ {
			if tries > 100000 {
				h.t.Fatalf("no pick lands on %s", addr)
			}
			res, perr := picker{h.tr}.Pick(balancer.PickInfo{})
			if perr != nil {
				h.t.Fatalf("Pick: %v", perr)
			}
			if res.SubConn.(*fakeSubConn).addr == addr {
				res.Done(doneInfo(err))
				break
			}
			res.Done(doneInfo(nil))
		}
	}
}

// tick advances the clock one bucket and runs the control loop's tick.
func (h *harness) tick() {
	h.clock.Advance(time.Duration(h.tr.cfg.Bucket))
	h.tr.tick()
}

func (h *harness) state(addr string) string {
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	return h.ep(addr).state.String()
}

func (h *harness) multiplier(addr string) float64 {
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	return h.ep(addr).multiplier
}

func TestExactWeightDistribution(t *testing.T) {
	h := newHarness(t, `{}`, 1, 2, 3, 4, 10)
	const n = 1_000_000 // a multiple of the weight sum, 20
	got := h.counts(n)
	want := map[string]int{"e0": n / 20, "e1": 2 * n / 20, "e2": 3 * n / 20, "e3": 4 * n / 20, "e4": 10 * n / 20}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("picks per endpoint over 10^6 picks (-want +got):\n%s", diff)
	}
}

func TestScheduleSpreadsPicks(t *testing.T) {
	// Weight 1 among weight 9: e0's slot is not bunched with itself.
	table := schedule([]float64{1, 9})
	if len(table) != 10 {
		t.Fatalf("table %v, want 10 slots", table)
	}
	for i := 1; i < len(table); i++ {
		if table[i] == 0 && table[i-1] == 0 {
			t.Errorf("table %v repeats the light endpoint back to back", table)
		}
	}
	// Weights needing more than maxTable slots are scaled, keeping every endpoint.
	big := schedule([]float64{1, 1 << 30})
	if len(big) > maxTable+1 || big[0] != 1 && big[len(big)-1] != 0 && countOf(big, 0) != 1 {
		t.Errorf("scaled table of %d slots has endpoint 0 %d times", len(big), countOf(big, 0))
	}
}

func countOf(table []int32, idx int32) int {
	n := 0
	for _, v := range table {
		if v == idx {
			n++
		}
	}
	return n
}

func TestBurstInOneTickHalvesOnce(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 1000}`, 1, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { h.record("e0", 50, codes.Unavailable) })
	}
	wg.Wait()
	h.tick()
	if got := h.multiplier("e0"); got != 0.5 {
		t.Errorf("multiplier after a burst of 400 failures in one tick = %v, want 0.5 (one halving)", got)
	}
	if got := h.counts(300); got["e0"] != 100 || got["e1"] != 200 {
		t.Errorf("picks after demotion = %v, want e0:100 e1:200", got)
	}
}

func TestDemotionFloorAndRestoration(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 1000000}`, 1, 1)
	for range 10 {
		h.record("e0", 1, codes.ResourceExhausted) // demotes, never ejects
		h.tick()
	}
	if got := h.multiplier("e0"); got != 1.0/16 {
		t.Fatalf("multiplier after 10 failing ticks = %v, want the floor 1/16", got)
	}
	if got := h.counts(17); got["e0"] != 1 || got["e1"] != 16 {
		t.Errorf("picks at the floor = %v, want e0:1 e1:16 (never zero)", got)
	}
	if h.state("e0") != "active" {
		t.Errorf("RESOURCE_EXHAUSTED ejected the endpoint")
	}
	var steps []float64
	for range 5 {
		h.record("e0", 3, codes.OK) // picks are derived from the schedule: a few whole rounds per tick
		h.tick()
		steps = append(steps, h.multiplier("e0"))
	}
	if diff := cmp.Diff([]float64{0.125, 0.25, 0.5, 1, 1}, steps); diff != "" {
		t.Errorf("restoration over clean ticks (-want +got):\n%s", diff)
	}
	h.tick() // a tick without calls neither restores nor demotes
	if got := h.multiplier("e0"); got != 1 {
		t.Errorf("multiplier %v", got)
	}
}

func TestApplicationErrorsAndCancelsDoNotCount(t *testing.T) {
	h := newHarness(t, `{}`, 1, 1)
	for _, c := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.Canceled, codes.Internal, codes.AlreadyExists} {
		h.record("e0", 20, c)
	}
	h.tick()
	if h.multiplier("e0") != 1 || h.state("e0") != "active" {
		t.Errorf("application errors changed e0: multiplier %v, state %s", h.multiplier("e0"), h.state("e0"))
	}
}

func TestConsecutiveFailuresEjectAtOnce(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 5}`, 1, 1, 1, 1, 1)
	h.record("e0", 4, codes.Unavailable)
	h.record("e0", 1, codes.OK) // a success resets the run
	h.record("e0", 4, codes.Unavailable)
	if got := h.shares(500)["e0"]; got != 100 {
		t.Fatalf("e0 got %d of 500 picks after 4 failures in a row, want 100", got)
	}
	h.record("e0", 1, codes.DeadlineExceeded) // the fifth in a row
	// No tick: Pick skips e0 from the failing call on.
	if got := h.shares(400)["e0"]; got != 0 {
		t.Errorf("e0 got %d picks right after its 5th failure in a row, want 0", got)
	}
	h.tr.ejectMarked() // the control loop, woken by Done
	if h.state("e0") != "ejected" {
		t.Errorf("state %s, want ejected", h.state("e0"))
	}
	if got := h.tr.events.Ejections.Load(); got != 1 {
		t.Errorf("ejections counted %d, want 1", got)
	}
	select {
	case <-h.tr.ejectCh: // Done woke the control loop
	default:
		t.Error("Done did not wake the control loop")
	}
}

func TestRatioEjectionNeedsVolume(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 10, "failure_ratio": 0.5}`, 1, 1, 1, 1)
	h.record("e0", 6, codes.Unavailable)
	h.record("e0", 2, codes.OK)
	h.tick() // 8 calls, 75% failing: below minRequests
	if h.state("e0") != "active" {
		t.Fatalf("ejected with 8 calls in the window")
	}
	h.record("e0", 3, codes.Unavailable)
	h.record("e0", 3, codes.OK)
	h.tick() // about 14 calls, 9 failing
	if h.state("e0") != "ejected" {
		t.Errorf("state %s after 9 of about 14 calls failed, want ejected: %+v", h.state("e0"), h.tr.stats().Endpoints[0])
	}
	h.record("e1", 4, codes.Unavailable)
	h.record("e1", 16, codes.OK)
	h.tick() // 20% failures
	if h.state("e1") != "active" {
		t.Errorf("e1 ejected at a 20%% failure ratio")
	}
}

func TestEjectionLimits(t *testing.T) {
	h := newHarness(t, `{"max_ejection_percent": 50}`, 1, 1, 1, 1, 1)
	for _, a := range []string{"e0", "e1", "e2", "e3", "e4"} {
		h.record(a, 5, codes.Unavailable)
	}
	h.tr.ejectMarked()
	h.tick()
	ejected := 0
	for _, a := range []string{"e0", "e1", "e2", "e3", "e4"} {
		if h.state(a) == "ejected" {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d of 5 ejected, want 2 (50%%, rounded down)", ejected)
	}

	lone := newHarness(t, `{"max_ejection_percent": 100}`, 1)
	lone.record("e0", 50, codes.Unavailable)
	lone.tr.ejectMarked()
	lone.tick()
	if lone.state("e0") != "active" {
		t.Error("the only endpoint was ejected")
	}
	if got := lone.pick(nil); got != "e0" {
		t.Errorf("pick = %s", got)
	}
}

func TestPanicModeRoutesOverAllReady(t *testing.T) {
	h := newHarness(t, `{"max_ejection_percent": 100, "panic_threshold": 50}`, 1, 1, 1, 1)
	for _, a := range []string{"e0", "e1", "e2"} {
		h.record(a, 5, codes.Unavailable)
	}
	h.tr.ejectMarked()
	if got := h.tr.events.Panics.Load(); got != 1 {
		t.Errorf("panics counted %d, want 1", got)
	}
	// 1 of 4 READY endpoints usable (< 50%): route over all four rather than pile on e3.
	got := h.counts(400)
	if diff := cmp.Diff(map[string]int{"e0": 100, "e1": 100, "e2": 100, "e3": 100}, got); diff != "" {
		t.Errorf("picks in panic mode (-want +got):\n%s", diff)
	}
	if !h.tr.stats().Panic {
		t.Error("stats do not show panic mode")
	}
}

func TestEveryEndpointFailingStillPicks(t *testing.T) {
	// The defaults: all five failing every call. Picks never fail in the
	// balancer; callers see the servers' own errors.
	h := newHarness(t, `{}`, 1, 1, 1, 1, 1)
	unavailable := status.Error(codes.Unavailable, "server says no")
	for range 20 {
		for range 100 {
			h.pick(unavailable)
		}
		h.tr.ejectMarked()
		h.tick()
	}
	if got := h.counts(100); len(got) == 0 {
		t.Error("no picks")
	}
}

func TestEjectionTimeGrowsAndDecays(t *testing.T) {
	h := newHarness(t, `{"ejection_jitter": 0, "base_ejection_time": "5s", "max_ejection_time": "12s", "slow_start": "0s", "window": "3s", "bucket": "1s"}`, 1, 1, 1)
	var durations []time.Duration
	for range 3 {
		h.record("e0", 5, codes.Unavailable)
		h.tr.ejectMarked()
		h.tr.mu.Lock()
		durations = append(durations, h.ep("e0").ejectedUntil.Sub(h.clock.Now()))
		h.tr.mu.Unlock()
		for h.state("e0") == "ejected" {
			h.tick()
		}
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 10 * time.Second, 12 * time.Second}, durations); diff != "" {
		t.Errorf("ejection times (-want +got):\n%s", diff)
	}
	// Each clean window (3 ticks) takes one off the count.
	for range 3 {
		h.record("e0", 1, codes.OK)
		h.tick()
	}
	h.tr.mu.Lock()
	times := h.ep("e0").timesEjected
	h.tr.mu.Unlock()
	if times != 2 {
		t.Errorf("times ejected after one clean window = %d, want 2", times)
	}
	h.record("e0", 5, codes.Unavailable)
	h.tr.ejectMarked()
	h.tr.mu.Lock()
	d := h.ep("e0").ejectedUntil.Sub(h.clock.Now())
	h.tr.mu.Unlock()
	if d != 12*time.Second {
		t.Errorf("ejection after decay lasts %v, want 12s (3 x 5s, capped)", d)
	}
}

func TestReadmissionNeedsReadyAndRampsUp(t *testing.T) {
	h := newHarness(t, `{"ejection_jitter": 0, "base_ejection_time": "5s", "slow_start": "10s", "slow_start_initial": 0.1}`, 1, 1)
	h.record("e0", 5, codes.Unavailable)
	h.tr.ejectMarked()
	h.setReady("e0", false)
	for range 7 {
		h.tick()
	}
	if h.state("e0") != "ejected" {
		t.Fatalf("re-admitted while not READY: %s", h.state("e0"))
	}
	h.setReady("e0", true)
	h.tick()
	if h.state("e0") != "ramping" {
		t.Fatalf("state %s after the ejection time with READY, want ramping", h.state("e0"))
	}
	var shares []int
	for range 6 {
		got := h.counts(1000)
		shares = append(shares, got["e0"])
		h.tick()
		h.tick()
	}
	for i := 1; i < len(shares); i++ {
		if shares[i] <= shares[i-1] && shares[i] < 500 {
			t.Errorf("slow start not ramping: e0 shares of 1000 picks %v", shares)
			break
		}
	}
	if shares[0] < 80 || shares[0] > 100 {
		t.Errorf("first ramp share %d of 1000, want about 10%% of its weight (~91)", shares[0])
	}
	if h.state("e0") != "active" || shares[len(shares)-1] != 500 {
		t.Errorf("after the ramp: state %s, share %d; want active and 500", h.state("e0"), shares[len(shares)-1])
	}
}

func TestFailingDuringRampReEjectsLonger(t *testing.T) {
	h := newHarness(t, `{"ejection_jitter": 0, "base_ejection_time": "5s", "slow_start": "10s", "consecutive_failures": 0, "min_requests": 1000}`, 1, 1)
	h.tr.mu.Lock()
	h.tr.ejectLocked(h.ep("e0"), h.clock.Now(), "test")
	h.tr.publishLocked()
	h.tr.mu.Unlock()
	for h.state("e0") == "ejected" {
		h.tick()
	}
	h.record("e0", 1, codes.Unavailable)
	h.tick()
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	if ep := h.ep("e0"); ep.state != stateEjected || ep.timesEjected != 2 || ep.ejectedUntil.Sub(h.clock.Now()) != 10*time.Second {
		t.Errorf("after failing during the ramp: state %s, times %d, for %v; want ejected, 2, 10s",
			ep.state, ep.timesEjected, ep.ejectedUntil.Sub(h.clock.Now()))
	}
}

func TestChurnWhilePicking(t *testing.T) {
	h := newHarness(t, `{}`, 1, 2, 3)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := picker{h.tr}.Pick(balancer.PickInfo{})
				if err == nil {
					res.Done(doneInfo(status.Error(codes.Unavailable, "x")))
				}
			}
		})
	}
	for i := range 300 {
		n := 1 + i%5
		var eps []resolver.Endpoint
		var states []endpointsharding.ChildState
		for j := range n {
			addr := fmt.Sprintf("c%d", (i+j)%7)
			e := weight.Set(resolver.Endpoint{Addresses: []resolver.Address{{Addr: addr}}}, weight.EndpointInfo{Weight: uint32(j + 1)})
			eps = append(eps, e)
			states = append(states, endpointsharding.ChildState{Endpoint: e, State: balancer.State{
				ConnectivityState: connectivity.Ready, Picker: subConnPicker{&fakeSubConn{addr: addr}}}})
		}
		h.tr.setEndpoints(eps)
		h.tr.setChildStates(states, errPicker{balancer.ErrNoSubConnAvailable})
		if i%3 == 0 {
			h.tick()
			h.tr.ejectMarked()
		}
		_ = h.tr.stats()
	}
	close(stop)
	wg.Wait()
}

func TestParseConfig(t *testing.T) {
	got, err := ParseConfig([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultConfig(), got, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("{} (-defaults +got):\n%s", diff)
	}
	got, err = ParseConfig([]byte(`{"window": "30s", "bucket": "500ms", "failure_codes": ["unavailable", "INTERNAL"], "consecutive_failures": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.windowBuckets() != 60 || !got.failure.Has(codes.Internal) || got.failure.Has(codes.DeadlineExceeded) || got.ConsecutiveFailures != 0 {
		t.Errorf("parsed %+v", got)
	}
	for _, bad := range []struct{ js, field string }{
		{`{"window": "1s", "bucket": "2s"}`, "window"},
		{`{"window": "61s"}`, "window"},
		{`{"bucket": "-1s"}`, "bucket"},
		{`{"min_multiplier": 0}`, "min_multiplier"},
		{`{"failure_ratio": 1.5}`, "failure_ratio"},
		{`{"max_ejection_percent": 101}`, "max_ejection_percent"},
		{`{"panic_threshold": -1}`, "panic_threshold"},
		{`{"failure_codes": ["NOPE"]}`, "failure_codes"},
		{`{"failure_codes": ["OK"]}`, "failure_codes"},
		{`{"demote_codes": ["UNAVAILABLE"]}`, "both"},
		{`{"max_ejection_time": "1s"}`, "max_ejection_time"},
		{`{"slow_start_initial": 0}`, "slow_start_initial"},
		{`{"ejection_jitter": 1}`, "ejection_jitter"},
		{`{"consecutive_failures": -1}`, "consecutive_failures"},
		{`{"min_requests": 0}`, "min_requests"},
		{`{"deadline_exceeded": "sometimes"}`, "deadline_exceeded"},
		{`{"latency_decay": "0s"}`, "latency_decay"},
		{`{"load_margin": 1}`, "load_margin"},
		{`{"load_margin": -0.1}`, "load_margin"},
		{`{"probe_interval": "-1s"}`, "probe_interval"},
		{`{"latency_floor": "-1ms"}`, "latency_floor"},
		{`{"load_aware": "yes"}`, "load_aware"},
		{`{"windw": "10s"}`, "windw"},
		{`{"consecutiveFailures": 3}`, "consecutiveFailures"}, // the keys are snake_case
		{`{"window": 10}`, "duration"},
		{`{} {}`, "trailing"},
		{`[`, "kit_weighted"},
	} {
		_, err := ParseConfig([]byte(bad.js))
		if err == nil || !containsAll(err.Error(), Name, bad.field) {
			t.Errorf("ParseConfig(%s) = %v, want an error naming %q", bad.js, err, bad.field)
		}
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"window":"5s","bucket":"1s"}`, `{"failure_codes":["UNAVAILABLE"]}`, `{"min_multiplier":1e308}`, `{"deadline_exceeded":"ignore"}`, `null`,
		`{"load_aware":false}`, `{"latency_decay":"1ms","load_margin":0.99,"probe_interval":"1h","latency_floor":"0s"}`, `{"load_margin":NaN}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, js string) {
		c, err := ParseConfig([]byte(js))
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("accepted config fails validation: %v", err)
		}
		if c.windowBuckets() < 1 || c.windowBuckets() > 60 {
			t.Fatalf("accepted window of %d buckets", c.windowBuckets())
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		if !(c.keep > 0 && c.keep <= 1) || c.decay <= 0 || c.probe <= 0 {
			t.Fatalf("accepted load parameters keep %v, decay %v, probe %v", c.keep, c.decay, c.probe)
		}
	})
}

func (h *harness) eject(addr string) {
	h.tr.mu.Lock()
	h.tr.ejectLocked(h.ep(addr), h.clock.Now(), "test")
	h.tr.publishLocked()
	h.tr.unlock()
}

func (h *harness) timesEjected(addr string) int {
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	return h.ep(addr).timesEjected
}

func TestRampFailureRespectsEjectionLimit(t *testing.T) {
	h := newHarness(t, `{"max_ejection_percent": 50, "ejection_jitter": 0, "slow_start": "10s", "consecutive_failures": 0, "min_requests": 1000}`, 1, 1)
	h.eject("e0")
	for h.state("e0") == "ejected" {
		h.tick()
	}
	h.eject("e1") // the one ejection 2 endpoints allow
	h.record("e0", 1, codes.Unavailable)
	h.tick()
	if h.state("e0") != "ramping" || h.state("e1") != "ejected" {
		t.Errorf("states e0 %s, e1 %s; want e0 still ramping (limit reached), e1 ejected", h.state("e0"), h.state("e1"))
	}
	if got := h.multiplier("e0"); got != 0.5 {
		t.Errorf("e0 multiplier %v, want 0.5 (demoted instead of ejected)", got)
	}
}

func TestShrinkingReadmitsOverLimit(t *testing.T) {
	h := newHarness(t, `{"max_ejection_percent": 50, "ejection_jitter": 0}`, 1, 1, 1, 1)
	h.eject("e0")
	h.clock.Advance(time.Second)
	h.eject("e1") // due later than e0
	h.tr.setEndpoints(h.eps[:2])
	if h.state("e0") == "ejected" || h.state("e1") != "ejected" {
		t.Errorf("after shrinking to the 2 ejected endpoints: e0 %s, e1 %s; want e0 (due first) re-admitted", h.state("e0"), h.state("e1"))
	}
}

func TestDemotingCodesCountInTheRatio(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 10, "failure_ratio": 0.5}`, 1, 1)
	h.record("e0", 1, codes.Unavailable)
	h.record("e0", 8, codes.ResourceExhausted)
	h.record("e0", 1, codes.OK)
	h.tick()
	if h.state("e0") != "active" {
		t.Errorf("ejected with 1 failure in 10 calls (8 RESOURCE_EXHAUSTED)")
	}
}

func TestCancelledCallsDoNotRestore(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 1000}`, 1, 1)
	h.record("e0", 1, codes.Unavailable)
	h.tick()
	h.record("e0", 20, codes.Canceled)
	h.tick()
	if got := h.multiplier("e0"); got != 0.5 {
		t.Errorf("multiplier %v after a tick of only cancelled calls, want 0.5 (no restoration)", got)
	}
}

func TestRepickIsNotAnOutcome(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 5}`, 1, 1)
	h.record("e0", 4, codes.Unavailable)
	h.ep("e0").done(balancer.DoneInfo{}) // grpc-go re-picking: nothing was sent
	h.record("e0", 1, codes.Unavailable)
	if !h.ep("e0").marked.Load() {
		t.Error("a re-pick's empty Done reset the run of failures")
	}
}

func TestLowTrafficRatioEjection(t *testing.T) {
	// One call per tick, alternating between the two endpoints; e0 fails all.
	// No demotion (floor 1), so e0 keeps getting every other call: derived
	// successes must not dilute its failures.
	h := newHarness(t, `{"consecutive_failures": 0, "min_requests": 4, "failure_ratio": 0.6, "min_multiplier": 1}`, 1, 1)
	for i := 0; i < 20 && h.state("e0") != "ejected"; i++ {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if res.SubConn.(*fakeSubConn).addr == "e0" {
			res.Done(doneInfo(status.Error(codes.Unavailable, "down")))
		} else {
			res.Done(doneInfo(nil))
		}
		h.tick()
	}
	if h.state("e0") != "ejected" {
		t.Errorf("e0 failing every call at one call per tick was never ejected: %+v", h.tr.stats().Endpoints[0])
	}
}

func TestMarkedHeavyEndpointIsSkipped(t *testing.T) {
	h := newHarness(t, `{}`, 10, 1, 1, 1)
	h.record("e0", 5, codes.Unavailable)
	got := h.shares(130)
	if got["e0"] != 0 {
		t.Errorf("e0, marked after 5 failures, still got %d of 130 picks before the control loop ran", got["e0"])
	}
}

func TestRemovedAndReaddedEndpointKeepsItsState(t *testing.T) {
	h := newHarness(t, `{"ejection_jitter": 0}`, 1, 1, 1)
	h.eject("e0")
	h.tr.setEndpoints(h.eps[1:]) // e0 went critical in Consul
	h.tr.setEndpoints(h.eps)     // and passing again
	h.pushStates()
	if h.state("e0") != "ejected" || h.timesEjected("e0") != 1 {
		t.Errorf("re-added e0: state %s, times ejected %d; want still ejected, 1", h.state("e0"), h.timesEjected("e0"))
	}
	if got := h.shares(30)["e0"]; got != 0 {
		t.Errorf("re-added ejected e0 got %d picks", got)
	}
}

func TestDecayNeedsACleanWindowAfterReadmission(t *testing.T) {
	h := newHarness(t, `{"ejection_jitter": 0, "slow_start": "0s", "window": "3s", "bucket": "1s"}`, 1, 1, 1)
	h.eject("e0")
	h.eject("e0") // twice: 10s
	for h.state("e0") == "ejected" {
		h.tick()
	}
	h.record("e0", 1, codes.OK)
	h.tick()
	if got := h.timesEjected("e0"); got != 2 {
		t.Errorf("times ejected one tick after re-admission = %d, want 2 (the window is not clean yet)", got)
	}
}

// Stats counts every call that ended on an endpoint, whatever its outcome,
// before and after the ticks that close its buckets.
func TestStatsCountCallsAcrossTicks(t *testing.T) {
	h := newHarness(t, `{}`, 1, 1)
	calls := func() map[string]int64 {
		got := map[string]int64{}
		for _, ep := range h.tr.stats().Endpoints {
			got[ep.Addresses] = ep.Calls
		}
		return got
	}
	want := map[string]int64{"e0": 0, "e1": 0}
	add := func(got map[string]int) {
		for addr, n := range got {
			want[addr] += int64(n)
		}
	}
	add(h.counts(10))
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("before a tick (-want +got):\n%s", diff)
	}
	h.tick()
	for range 3 {
		want[h.pick(status.Error(codes.Unavailable, "injected"))]++
	}
	h.tick()
	add(h.counts(7))
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("after ticks (-want +got):\n%s", diff)
	}
}
