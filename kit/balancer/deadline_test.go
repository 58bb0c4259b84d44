package balancer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// start picks until a pick lands on addr (the picks that land elsewhere
// succeed at once) and returns the end of that call: it reports code to the
// call's Done.
func (h *harness) start(addr string) func(codes.Code) {
	h.t.Helper()
	for range 1000 {
		res, err := picker{h.tr}.Pick(balancer.PickInfo{})
		if err != nil {
			h.t.Fatalf("Pick: %v", err)
		}
		if res.SubConn.(*fakeSubConn).addr == addr {
			return func(code codes.Code) {
				var err error
				if code != codes.OK {
					err = status.Error(code, "injected")
				}
				res.Done(doneInfo(err))
			}
		}
		res.Done(doneInfo(nil))
	}
	h.t.Fatalf("no pick lands on %s", addr)
	return nil
}

// startN starts n calls on addr.
func (h *harness) startN(addr string, n int) []func(codes.Code) {
	h.t.Helper()
	calls := make([]func(codes.Code), n)
	for i := range calls {
		calls[i] = h.start(addr)
	}
	return calls
}

func (h *harness) marked(addr string) bool { return h.ep(addr).marked.Load() }

// settle does what the control loop does when Done wakes it.
func (h *harness) settle() { h.tr.ejectMarked() }

// windowCounts sums addr's window, the bucket in progress excluded.
func (h *harness) windowCounts(addr string) counts {
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	var sum counts
	for _, c := range h.ep(addr).window {
		sum.success += c.success
		sum.failure += c.failure
		sum.demote += c.demote
		sum.ignored += c.ignored
	}
	return sum
}

// A black hole: nothing answers any more. Under when_silent it leaves the
// schedule on exactly its ConsecutiveFailures-th timeout of a call picked
// after its last answer, whether it answered before or not and however the
// calls overlap.
func TestBlackHoleEjectedAfterConsecutiveTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  string
		k    int
		// before runs before the k calls that time out are picked; it
		// returns calls picked earlier that time out first and must not
		// count (they were out when the endpoint last answered).
		before func(h *harness) []func(codes.Code)
		// together: the k calls are out at the same time.
		together bool
	}{
		{name: "fresh endpoint", cfg: `{}`, k: 5},
		{name: "fresh endpoint, consecutive_failures 3", cfg: `{"consecutive_failures": 3}`, k: 3},
		{name: "answered before, one call at a time", cfg: `{}`, k: 5, before: func(h *harness) []func(codes.Code) {
			h.record("e0", 20, codes.OK)
			return nil
		}},
		{name: "answered before, calls out together", cfg: `{}`, k: 5, together: true, before: func(h *harness) []func(codes.Code) {
			h.record("e0", 20, codes.OK)
			return nil
		}},
		{name: "last answer RESOURCE_EXHAUSTED", cfg: `{}`, k: 5, before: func(h *harness) []func(codes.Code) {
			h.record("e0", 20, codes.ResourceExhausted)
			return nil
		}},
		{name: "calls out at its last answer time out first", cfg: `{}`, k: 5, together: true, before: func(h *harness) []func(codes.Code) {
			early := h.startN("e0", 8)
			h.record("e0", 1, codes.OK) // the last answer, while the 8 are out
			return early
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg, 1, 1, 1)
			var early []func(codes.Code)
			if tc.before != nil {
				early = tc.before(h)
			}
			var calls []func(codes.Code)
			if tc.together {
				calls = h.startN("e0", tc.k)
			}
			for _, end := range early {
				end(codes.DeadlineExceeded)
			}
			if h.marked("e0") {
				t.Fatalf("e0 left the schedule on the timeouts of %d calls out at its last answer", len(early))
			}
			for i := range tc.k {
				if h.marked("e0") {
					t.Fatalf("e0 left the schedule after %d timeouts, want %d", i, tc.k)
				}
				if tc.together {
					calls[i](codes.DeadlineExceeded)
				} else {
					h.record("e0", 1, codes.DeadlineExceeded)
				}
			}
			if !h.marked("e0") {
				t.Fatalf("e0 still in the schedule after %d timeouts", tc.k)
			}
			h.settle()
			if got := h.state("e0"); got != "ejected" {
				t.Errorf("state %s, want ejected", got)
			}
			if got := h.tr.events.Ejections.Load(); got != 1 {
				t.Errorf("ejections %d, want 1", got)
			}
		})
	}
}

// busyRun keeps window calls out on addr, as a client of a server that
// serves some calls and lets the others queue into their deadline: each
// step ends the oldest call, with answer every answerEvery-th step and
// DEADLINE_EXCEEDED otherwise, and sends a new one; the control loop ticks
// every 50 steps. It fails the test as soon as addr leaves the schedule.
func (h *harness) busyRun(addr string, steps, window, answerEvery int, answer codes.Code) {
	h.t.Helper()
	out := h.startN(addr, window)
	for i := range steps {
		code := codes.DeadlineExceeded
		if i%answerEvery == 0 {
			code = answer
		}
		out[0](code)
		out = append(out[1:], h.start(addr))
		if h.marked(addr) {
			h.settle()
			h.t.Fatalf("%s left the schedule at step %d (state %s)", addr, i, h.state(addr))
		}
		if i%50 == 49 {
			h.tick()
		}
	}
	for _, end := range out {
		end(answer)
	}
}

// A busy endpoint answers some calls while others time out: every call
// that timed out was out while it answered another. It is demoted (load
// shifts away) but never ejected, however long the bursts of timeouts.
func TestBusyEndpointDemotedNeverEjected(t *testing.T) {
	for _, tc := range []struct {
		name                string
		window, answerEvery int
		answer              codes.Code
	}{
		{"an answer every 3 calls", 10, 3, codes.OK},
		{"bursts of 8 timeouts between answers", 20, 9, codes.OK},
		{"bursts of 30 timeouts between answers", 40, 31, codes.OK},
		{"bursts of 100 timeouts between answers", 120, 101, codes.OK},
		{"answers RESOURCE_EXHAUSTED", 40, 31, codes.ResourceExhausted},
		{"answers an application error", 40, 31, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without load_aware: with it, an endpoint holding this many
			// calls that run for seconds gets no new one (see
			// TestLoadAwarePicking), and this test is about the judgement
			// of the timeouts it keeps getting.
			h := newHarness(t, `{"load_aware": false}`, 1, 1, 1)
			h.record("e0", 20, codes.OK) // healthy until now
			h.busyRun("e0", 400, tc.window, tc.answerEvery, tc.answer)
			if got := h.tr.events.Ejections.Load(); got != 0 {
				t.Errorf("%d ejections, want 0", got)
			}
			if got := h.multiplier("e0"); got >= 1 {
				t.Errorf("multiplier %v, want demoted (< 1)", got)
			}
			if got := h.windowCounts("e0"); got.failure != 0 || got.demote == 0 {
				t.Errorf("window %+v, want no failures and the timeouts as demotions", got)
			}
		})
	}
}

// A timeout judged busy neither adds to the run of consecutive failures
// nor ends it.
func TestBusyTimeoutLeavesTheRunAlone(t *testing.T) {
	h := newHarness(t, `{"consecutive_failures": 3}`, 1, 1, 1)
	slow := h.startN("e0", 4)
	h.record("e0", 1, codes.OK)          // answered while the 4 are out
	h.record("e0", 2, codes.Unavailable) // 2 in a row
	for _, end := range slow {
		end(codes.DeadlineExceeded) // busy
	}
	if h.marked("e0") {
		t.Fatal("busy timeouts added to the run of failures")
	}
	h.record("e0", 1, codes.Unavailable) // the 3rd in a row: the timeouts did not end the run
	if !h.marked("e0") {
		t.Error("busy timeouts ended the run of failures")
	}
}

func TestDeadlineExceededRules(t *testing.T) {
	t.Run("failure ejects a busy endpoint", func(t *testing.T) {
		h := newHarness(t, `{"deadline_exceeded": "failure"}`, 1, 1, 1)
		out := h.startN("e0", 10)
		h.record("e0", 1, codes.OK) // an answer while the 10 are out
		for i, end := range out[:5] {
			if h.marked("e0") {
				t.Fatalf("e0 left the schedule after %d timeouts, want 5", i)
			}
			end(codes.DeadlineExceeded)
		}
		h.settle()
		if got := h.state("e0"); got != "ejected" {
			t.Errorf("state %s, want ejected", got)
		}
	})
	t.Run("ignore never counts", func(t *testing.T) {
		h := newHarness(t, `{"deadline_exceeded": "ignore"}`, 1, 1, 1)
		h.record("e0", 50, codes.DeadlineExceeded) // a black hole
		h.tick()
		if h.marked("e0") || h.multiplier("e0") != 1 {
			t.Errorf("marked %v, multiplier %v; want timeouts ignored", h.marked("e0"), h.multiplier("e0"))
		}
		if got := h.windowCounts("e0"); got.failure != 0 || got.demote != 0 || got.ignored != 50 {
			t.Errorf("window %+v, want 50 ignored", got)
		}
	})
	t.Run("in demote_codes", func(t *testing.T) {
		h := newHarness(t, `{"failure_codes": ["UNAVAILABLE"], "demote_codes": ["RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"]}`, 1, 1, 1)
		h.record("e0", 50, codes.DeadlineExceeded)
		h.tick()
		if h.marked("e0") || h.multiplier("e0") != 0.5 {
			t.Errorf("marked %v, multiplier %v; want demoted only", h.marked("e0"), h.multiplier("e0"))
		}
	})
	t.Run("in neither list", func(t *testing.T) {
		h := newHarness(t, `{"failure_codes": ["UNAVAILABLE"], "consecutive_failures": 2}`, 1, 1, 1)
		h.record("e0", 1, codes.Unavailable)
		h.record("e0", 1, codes.DeadlineExceeded) // neither an answer nor a failure
		h.record("e0", 1, codes.Unavailable)
		if !h.marked("e0") {
			t.Error("a DEADLINE_EXCEEDED in neither list ended the run of failures")
		}
	})
}

// The rule follows live changes of the configuration.
func TestDeadlineRuleLiveChange(t *testing.T) {
	h := newHarness(t, `{"ejection_jitter": 0}`, 1, 1, 1)
	set := func(js string) {
		t.Helper()
		cfg, err := ParseConfig([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		h.tr.setConfig(cfg)
	}
	// busy times out 5 calls out while e0 answered another, and reports
	// whether e0 left the schedule.
	busy := func() bool {
		out := h.startN("e0", 5)
		h.record("e0", 1, codes.OK)
		for _, end := range out {
			end(codes.DeadlineExceeded)
		}
		return h.marked("e0")
	}
	if busy() {
		t.Fatal("when_silent: a busy endpoint left the schedule")
	}
	set(`{"ejection_jitter": 0, "deadline_exceeded": "failure"}`)
	if !busy() {
		t.Fatal("failure: 5 timeouts in a row left e0 in the schedule")
	}
	h.settle()
	h.clock.Advance(time.Minute)
	h.tick() // re-admitted
	if h.state("e0") == "ejected" {
		t.Fatal("e0 not re-admitted")
	}
	set(`{"ejection_jitter": 0, "deadline_exceeded": "ignore"}`)
	h.record("e0", 10, codes.DeadlineExceeded)
	if h.marked("e0") {
		t.Fatal("ignore: timeouts counted")
	}
	// Calls picked under another rule carry no record: under when_silent
	// their timeouts are failures, whatever was answered meanwhile.
	old := h.startN("e0", 5)
	set(`{"ejection_jitter": 0}`)
	if busy() {
		t.Fatal("back to when_silent: a busy endpoint left the schedule")
	}
	for _, end := range old {
		end(codes.DeadlineExceeded)
	}
	if !h.marked("e0") {
		t.Error("timeouts of calls picked under ignore were judged against answers")
	}
}

// RESOURCE_EXHAUSTED (a demote code by default) demotes and never ejects,
// however many; as an answer, it ends a run of failures.
func TestResourceExhaustedDemotesNeverEjects(t *testing.T) {
	h := newHarness(t, `{}`, 1, 1, 1)
	for range 5 {
		h.record("e0", 100, codes.ResourceExhausted)
		h.tick()
		if h.marked("e0") {
			t.Fatal("RESOURCE_EXHAUSTED marked e0 for ejection")
		}
	}
	if h.state("e0") != "active" || h.tr.events.Ejections.Load() != 0 {
		t.Errorf("state %s, ejections %d", h.state("e0"), h.tr.events.Ejections.Load())
	}
	if got := h.multiplier("e0"); got >= 1 {
		t.Errorf("multiplier %v, want demoted", got)
	}

	h = newHarness(t, `{"consecutive_failures": 3}`, 1, 1, 1)
	h.record("e0", 2, codes.Unavailable)
	h.record("e0", 1, codes.ResourceExhausted)
	h.record("e0", 2, codes.Unavailable)
	if h.marked("e0") {
		t.Error("RESOURCE_EXHAUSTED did not end the run of failures")
	}
}

func TestDeadlineRuleConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadlineExceeded != statuscode.DeadlineWhenSilent || !c.whenSilent {
		t.Errorf("default %q (judged %v), want when_silent", c.DeadlineExceeded, c.whenSilent)
	}
	if c, err := ParseConfig([]byte(`{"failure_codes": ["UNAVAILABLE"]}`)); err != nil || c.whenSilent {
		t.Errorf("DEADLINE_EXCEEDED not a failure code: judged %v, %v", c.whenSilent, err)
	}
	for _, js := range []string{`{"deadline_exceeded": "sometimes"}`, `{"deadline_exceeded": ""}`, `{"deadline_exceeded": 1}`} {
		if _, err := ParseConfig([]byte(js)); err == nil || !containsAll(err.Error(), Name, "deadline_exceeded") {
			t.Errorf("ParseConfig(%s) = %v, want an error naming deadline_exceeded", js, err)
		}
	}
	// A Config from YAML or Go is checked by Validate.
	c = DefaultConfig()
	c.DeadlineExceeded = "Failure"
	if err := c.Validate(); err == nil || !containsAll(err.Error(), Name, "deadline_exceeded") {
		t.Errorf("Validate = %v, want an error naming deadline_exceeded", err)
	}
}

// Under when_silent a call's record comes from a pool: Pick and Done
// allocate nothing.
func TestPickDoneAllocateNothing(t *testing.T) {
	for _, rule := range []string{"when_silent", "failure"} {
		h := newHarness(t, `{"deadline_exceeded": "`+rule+`"}`, 1, 1, 1)
		p := picker{h.tr}
		allocs := testing.AllocsPerRun(1000, func() {
			res, _ := p.Pick(balancer.PickInfo{})
			res.Done(doneInfo(nil))
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Pick and Done, want 0", rule, allocs)
		}
	}
}

// gate holds the calls of a server that it is told to hold, then fails
// them with DEADLINE_EXCEEDED when opened, as calls that queued into their
// deadline; the other calls pass.
type gate struct {
	mu   sync.Mutex
	hold int           // guarded by mu; calls left to hold
	held chan struct{} // one value per call held
	open chan struct{}
}

func newGate() *gate { return &gate{held: make(chan struct{}, 100), open: make(chan struct{})} }

func (g *gate) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	g.mu.Lock()
	hold := g.hold > 0
	if hold {
		g.hold--
	}
	g.mu.Unlock()
	if !hold {
		return handler(ctx, req)
	}
	g.held <- struct{}{}
	<-g.open
	return nil, status.Error(codes.DeadlineExceeded, "queued past its deadline")
}

// deadlineClient is a kit_weighted client of two loopback backends, the
// first behind a gate, with its Monitor and manual resolver.
type deadlineClient struct {
	t      *testing.T
	gate   *gate
	addrs  []string
	r      *manual.Resolver
	mon    *Monitor
	state  resolver.State
	client testpbv1.TestServiceClient
}

func newDeadlineClient(t *testing.T, cfg string) *deadlineClient {
	t.Helper()
	useClock(t, &tickClock{fakeClock: fakeClock{fakeclock.New(time.Unix(1e9, 0))}, ticks: make(chan time.Time)})
	d := &deadlineClient{t: t, gate: newGate(), mon: new(Monitor), r: manual.NewBuilderWithScheme("kwdeadline")}
	var eps []resolver.Endpoint
	for i := range 2 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var opts []grpc.ServerOption
		if i == 0 {
			opts = append(opts, grpc.UnaryInterceptor(d.gate.intercept))
		}
		srv := grpc.NewServer(opts...)
		(&kittest.Service{Name: lis.Addr().String()}).Register(srv)
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		d.addrs = append(d.addrs, lis.Addr().String())
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: lis.Addr().String()}}})
	}
	d.state = SetLogger(SetMonitor(resolver.State{Endpoints: eps}, d.mon), slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.r.InitialState(d.state)
	cc, err := grpc.NewClient("kwdeadline:///backends", grpc.WithResolvers(d.r), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, Name, cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	d.client = testpbv1.NewTestServiceClient(cc)
	kittest.WaitFor(t, "both endpoints READY", func() bool {
		d.call()
		ready := 0
		for _, st := range d.mon.Stats() {
			for _, ep := range st.Endpoints {
				if ep.Ready {
					ready++
				}
			}
		}
		return ready == 2
	})
	return d
}

// call makes one call and returns the backend that answered it.
func (d *deadlineClient) call() (string, error) {
	resp, err := d.client.Echo(d.t.Context(), &testpbv1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
	return resp.GetServer(), err
}

// hold makes calls until n of them are held at the first backend, and
// returns the channel that receives their errors.
func (d *deadlineClient) hold(n int) <-chan error {
	d.t.Helper()
	d.gate.mu.Lock()
	d.gate.hold = n
	d.gate.mu.Unlock()
	errs := make(chan error, n)
	for held := 0; held < n; {
		answered := make(chan struct{})
		go func() {
			if _, err := d.call(); err != nil {
				errs <- err // held, then failed
				return
			}
			close(answered) // by the second backend
		}()
		select {
		case <-d.gate.held:
			held++
		case <-answered:
		case <-time.After(10 * time.Second):
			d.t.Fatal("a call neither answered nor held")
		}
	}
	return errs
}

func (d *deadlineClient) endpoint() EndpointStats {
	d.t.Helper()
	for _, st := range d.mon.Stats() {
		for _, ep := range st.Endpoints {
			if ep.Addresses == d.addrs[0] {
				return ep
			}
		}
	}
	d.t.Fatal("no stats for the gated backend")
	return EndpointStats{}
}

// Through real servers: calls that queue into their deadline at a backend
// that answers another call meanwhile demote it; the same calls with
// nothing answered, or under deadline_exceeded failure, eject it.
func TestDeadlineExceededEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name, rule  string
		answer      bool // the gated backend answers a call while 3 are held
		wantEjected bool
	}{
		{"busy", "when_silent", true, false},
		{"silent", "when_silent", false, true},
		{"busy, rule failure", "failure", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeadlineClient(t, fmt.Sprintf(`{"consecutive_failures": 3, "deadline_exceeded": %q}`, tc.rule))
			errs := d.hold(3)
			if tc.answer {
				kittest.WaitFor(t, "an answer from the gated backend", func() bool {
					server, err := d.call()
					return err == nil && server == d.addrs[0]
				})
			}
			close(d.gate.open)
			for range 3 {
				if err := <-errs; status.Code(err) != codes.DeadlineExceeded {
					t.Fatalf("held call: %v, want DEADLINE_EXCEEDED", err)
				}
			}
			if tc.wantEjected {
				kittest.WaitFor(t, "the ejection", func() bool { return d.endpoint().State == StateEjected })
				return
			}
			// Done has run for the 3 calls: a mark would make Pick skip the
			// backend from now on.
			kittest.WaitFor(t, "a call on the gated backend", func() bool {
				server, err := d.call()
				return err == nil && server == d.addrs[0]
			})
			if ep := d.endpoint(); ep.State != StateActive || ep.Failures != 0 || ep.Demotions != 3 {
				t.Errorf("gated backend %+v, want active with 3 demotions and no failure", ep)
			}
		})
	}
}

// A service config with a bad deadline_exceeded is refused, naming it, and
// the configuration in force stays; a good one is followed at once.
func TestDeadlineRuleServiceConfig(t *testing.T) {
	d := newDeadlineClient(t, `{"deadline_exceeded": "failure"}`)
	rule := func() statuscode.DeadlineRule { return d.mon.Stats()[0].Config.DeadlineExceeded }
	update := func(cfg string) error {
		sc := d.r.CC().ParseServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, Name, cfg))
		if sc.Err != nil {
			return sc.Err
		}
		s := d.state
		s.ServiceConfig = sc
		return d.r.CC().UpdateState(s)
	}
	if err := update(`{"deadline_exceeded": "sometimes"}`); err == nil || !containsAll(err.Error(), Name, "deadline_exceeded") {
		t.Errorf("bad deadline_exceeded: %v, want an error naming it", err)
	}
	if got := rule(); got != statuscode.DeadlineFailure {
		t.Errorf("rule %q after a refused config, want failure kept", got)
	}
	if err := update(`{"deadline_exceeded": "when_silent"}`); err != nil {
		t.Fatal(err)
	}
	if got := rule(); got != statuscode.DeadlineWhenSilent {
		t.Errorf("rule %q, want when_silent", got)
	}
}

// TestPickDoneAllocateNothingWithMonitor: a balancer attached to a Monitor,
// as the one of a client shown on /debug/kit and sampled into its history,
// records nothing more per call: Pick and Done still allocate nothing, and
// the Monitor reads the calls from the counters the hot path keeps anyway.
func TestPickDoneAllocateNothingWithMonitor(t *testing.T) {
	h := newHarness(t, `{}`, 1, 1, 1)
	m := new(Monitor)
	m.add(h.tr)
	t.Cleanup(func() { m.remove(h.tr) })
	calls := func() int64 {
		var n int64
		for _, ts := range m.Stats() { // what the history's sampler reads
			for _, ep := range ts.Endpoints {
				n += ep.Calls
			}
		}
		return n
	}
	before := calls()
	p := picker{h.tr}
	allocs := testing.AllocsPerRun(1000, func() {
		res, _ := p.Pick(balancer.PickInfo{})
		res.Done(doneInfo(nil))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Pick and Done with a Monitor attached, want 0", allocs)
	}
	if got := calls() - before; got != 1001 { // AllocsPerRun runs the function once more to warm up
		t.Errorf("the Monitor saw %d calls, want 1001", got)
	}
}
