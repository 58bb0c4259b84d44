package breaker

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// withClock makes clk the time source of b; call it before any call.
func withClock(b *Breakers, clk *fakeclock.Clock) {
	b.now = clk.Now
	b.epoch = clk.Now()
}

// direct drives b's interceptors without a server: each call's outcome,
// and what happens while it is out, is the test's to choose.
type direct struct {
	t     *testing.T
	b     *Breakers
	clk   *fakeclock.Clock
	cc    *grpc.ClientConn
	unary grpc.UnaryClientInterceptor
}

func newDirect(t *testing.T, cfg Config) *direct {
	t.Helper()
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	b := newBreakers(t, cfg)
	clk := fakeclock.New(time.Unix(1e9, 0))
	withClock(b, clk)
	return &direct{t: t, b: b, clk: clk, cc: cc, unary: b.UnaryClientInterceptor()}
}

// call makes one unary call of echo that runs during (which may make other
// calls), lasts a millisecond of the clock, and ends with code. It returns
// what the caller sees.
func (d *direct) call(code codes.Code, during func()) error {
	return d.unary(d.t.Context(), echo, nil, nil, d.cc, func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		if during != nil {
			during()
		}
		d.clk.Advance(time.Millisecond)
		return fake(code)
	})
}

// nested makes n calls ending with code, each started while the previous
// one is out; the innermost runs during. They end in the reverse order:
// during's calls first, then the n calls, the last started first.
func (d *direct) nested(n int, code codes.Code, during func()) {
	if n == 0 {
		if during != nil {
			during()
		}
		return
	}
	d.call(code, func() { d.nested(n-1, code, during) })
}

func (d *direct) state() State { return state(d.b, echo) }

func TestResourceExhaustedNeverOpens(t *testing.T) {
	srv := &kittest.Service{}
	srv.Fail(fake(codes.ResourceExhausted))
	b := newBreakers(t, DefaultConfig()) // both triggers on
	c := serve(t, srv, b)
	for i := range 100 {
		if err := call(t, c); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "fake") {
			t.Fatalf("call %d: %v, want the server's ResourceExhausted", i, err)
		}
	}
	want := State{Target: target, Method: echo, State: "closed", Counts: Counts{
		Requests: 100, TotalSuccesses: 100, ConsecutiveSuccesses: 100,
	}}
	if diff := cmp.Diff(want, state(b, echo)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

func TestHalfOpenProbeAnsweredResourceExhaustedCloses(t *testing.T) {
	srv := &kittest.Service{}
	srv.Fail(fake(codes.Unavailable))
	b := newBreakers(t, consecutiveOnly(1, 20*time.Millisecond))
	c := serve(t, srv, b)
	call(t, c)
	if got := state(b, echo).State; got != "open" {
		t.Fatalf("state = %q, want open", got)
	}
	kittest.WaitFor(t, "half-open", func() bool { return state(b, echo).State == "half-open" })
	srv.Fail(fake(codes.ResourceExhausted))
	if err := call(t, c); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("probe: %v, want ResourceExhausted", err)
	}
	if got := state(b, echo).State; got != "closed" {
		t.Errorf("state after a probe answered RESOURCE_EXHAUSTED = %q, want closed", got)
	}
}

func TestDeadlineExceeded(t *testing.T) {
	const n = 5
	for _, tc := range []struct {
		name string
		rule statuscode.DeadlineRule
		// run makes timed-out calls, n of them or more.
		run  func(d *direct)
		want State
	}{{
		name: "when_silent: answers while the calls were out",
		rule: statuscode.DeadlineWhenSilent,
		run: func(d *direct) {
			for range 100 {
				d.call(codes.DeadlineExceeded, func() { d.call(codes.OK, nil) })
			}
		},
		want: State{State: "closed", Counts: Counts{Requests: 200, TotalSuccesses: 100, TotalExclusions: 100, ConsecutiveSuccesses: 100}},
	}, {
		// The first calls queue into their deadlines while the server
		// answers one: they end one after another, with no answer between.
		name: "when_silent: a burst of timeouts after an answer they were out for",
		rule: statuscode.DeadlineWhenSilent,
		run:  func(d *direct) { d.nested(2*n, codes.DeadlineExceeded, func() { d.call(codes.OK, nil) }) },
		want: State{State: "closed", Counts: Counts{Requests: 2*n + 1, TotalSuccesses: 1, TotalExclusions: 2 * n, ConsecutiveSuccesses: 1}},
	}, {
		name: "when_silent: an application error and RESOURCE_EXHAUSTED are answers too",
		rule: statuscode.DeadlineWhenSilent,
		run: func(d *direct) {
			d.nested(n, codes.DeadlineExceeded, func() { d.call(codes.NotFound, nil) })
			d.nested(n, codes.DeadlineExceeded, func() { d.call(codes.ResourceExhausted, nil) })
		},
		want: State{State: "closed", Counts: Counts{Requests: 2*n + 2, TotalSuccesses: 2, TotalExclusions: 2 * n, ConsecutiveSuccesses: 2}},
	}, {
		name: "when_silent: UNAVAILABLE is no answer",
		rule: statuscode.DeadlineWhenSilent,
		run: func(d *direct) {
			d.nested(n, codes.DeadlineExceeded, func() { d.call(codes.Unavailable, nil) })
		},
		want: State{State: "open"},
	}, {
		name: "when_silent: silent since the calls started",
		rule: statuscode.DeadlineWhenSilent,
		run: func(d *direct) {
			d.call(codes.OK, nil)
			d.clk.Advance(time.Millisecond) // the answer before the calls start
			for i := range n {
				if got := d.state().State; got != "closed" {
					d.t.Fatalf("state after %d timeouts = %q, want closed", i, got)
				}
				d.call(codes.DeadlineExceeded, nil)
			}
		},
		want: State{State: "open"},
	}, {
		name: "when_silent: never answered",
		rule: statuscode.DeadlineWhenSilent,
		run:  func(d *direct) { d.nested(n, codes.DeadlineExceeded, nil) },
		want: State{State: "open"},
	}, {
		name: "failure: answers do not help",
		rule: statuscode.DeadlineFailure,
		run:  func(d *direct) { d.nested(n, codes.DeadlineExceeded, func() { d.call(codes.OK, nil) }) },
		want: State{State: "open"},
	}, {
		name: "ignore: silent timeouts never count",
		rule: statuscode.DeadlineIgnore,
		run: func(d *direct) {
			for range 100 {
				d.call(codes.DeadlineExceeded, nil)
			}
		},
		want: State{State: "closed", Counts: Counts{Requests: 100, TotalExclusions: 100}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := consecutiveOnly(n, time.Hour)
			cfg.DeadlineExceeded = tc.rule
			d := newDirect(t, cfg)
			tc.run(d)
			tc.want.Target, tc.want.Method = target, echo
			if diff := cmp.Diff(tc.want, d.state()); diff != "" {
				t.Errorf("States (-want +got):\n%s", diff)
			}
		})
	}
}

// The time of the last answer is written at most once per millisecond: an
// answer less than that before a call started counts as a sign of life
// (the rule errs toward "busy"), an earlier one does not.
func TestAnswerGrain(t *testing.T) {
	for _, tc := range []struct {
		gap      time.Duration // from the last answer to the start of the timed-out call
		wantOpen bool
	}{
		{0, false},
		{999 * time.Microsecond, false},
		{time.Millisecond, true},
	} {
		d := newDirect(t, consecutiveOnly(1, time.Hour))
		d.call(codes.OK, nil)
		d.clk.Advance(tc.gap)
		d.call(codes.DeadlineExceeded, nil)
		if open := d.state().State == "open"; open != tc.wantOpen {
			t.Errorf("answer %v before the start: open = %v, want %v", tc.gap, open, tc.wantOpen)
		}
	}
	// Answers inside one grain after the recorded one are not written, and
	// still count.
	l := newLiveness()
	l.answered(0)
	l.answered(answerGrain - 1)
	if got := l.last.Load(); got != 0 {
		t.Errorf("an answer within the grain was written: last = %d", got)
	}
	if !l.answeredSince(answerGrain - 1) {
		t.Error("the unwritten answer is not seen")
	}
	l.answered(answerGrain)
	if got := l.last.Load(); got != answerGrain {
		t.Errorf("last = %d, want %d", got, answerGrain)
	}
}

// A configuration change keeps the record of answers: calls out across it
// are judged by answers either side.
func TestSetConfigKeepsLiveness(t *testing.T) {
	d := newDirect(t, consecutiveOnly(1, time.Hour))
	d.call(codes.DeadlineExceeded, func() {
		d.call(codes.OK, nil)
		if err := d.b.SetConfig(consecutiveOnly(2, time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
	d.call(codes.DeadlineExceeded, func() { d.call(codes.OK, nil) })
	if got := d.state().State; got != "closed" {
		t.Errorf("state = %q, want closed", got)
	}
}

func TestDeadlineRuleRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeadlineExceeded = "sometimes"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "deadline_exceeded") {
		t.Errorf("New = %v, want an error naming deadline_exceeded", err)
	}
	b := newBreakers(t, DefaultConfig())
	if err := b.SetConfig(cfg); err == nil || !strings.Contains(err.Error(), "breaker: deadline_exceeded") {
		t.Errorf("SetConfig = %v, want an error naming deadline_exceeded", err)
	}
	if diff := cmp.Diff(DefaultConfig(), b.Config()); diff != "" {
		t.Errorf("config after a refused SetConfig (-want +got):\n%s", diff)
	}
}

// A live change of the rule takes effect on the calls that follow.
func TestDeadlineRuleLiveChange(t *testing.T) {
	d := newDirect(t, consecutiveOnly(3, time.Hour))
	busy := func() { d.nested(3, codes.DeadlineExceeded, func() { d.call(codes.OK, nil) }) }
	busy()
	if got := d.state().State; got != "closed" {
		t.Fatalf("when_silent: state = %q, want closed", got)
	}
	cfg := consecutiveOnly(3, time.Hour)
	cfg.DeadlineExceeded = statuscode.DeadlineFailure
	if err := d.b.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	busy()
	if got := d.state().State; got != "open" {
		t.Errorf("failure: state = %q, want open", got)
	}
}

// expireAt makes the calls it passes end with DEADLINE_EXCEEDED when
// release is closed, as if their deadline passed then: it cancels them and
// reports the code a deadline gives.
func expireAt(release <-chan struct{}) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-release:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := invoker(ctx, method, req, reply, cc, opts...)
		if status.Code(err) == codes.Canceled {
			return status.Error(codes.DeadlineExceeded, "deadline passed")
		}
		return err
	}
}

// Through a real server: calls that wait in the server until their
// deadline while another call is answered leave the breaker closed; the
// same calls with nothing answered open it. The clock only moves by hand,
// so "while" and "before" do not depend on the machine's speed.
func TestDeadlineExceededEndToEnd(t *testing.T) {
	const n = 3
	for _, tc := range []struct {
		name     string
		rule     statuscode.DeadlineRule
		answer   bool // one call answered while the n calls wait
		wantOpen bool
	}{
		{"busy", statuscode.DeadlineWhenSilent, true, false},
		{"silent", statuscode.DeadlineWhenSilent, false, true},
		{"busy, rule failure", statuscode.DeadlineFailure, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &kittest.Service{}
			cfg := consecutiveOnly(n, time.Hour)
			cfg.DeadlineExceeded = tc.rule
			b := newBreakers(t, cfg)
			clk := fakeclock.New(time.Unix(1e9, 0))
			withClock(b, clk)
			release := make(chan struct{})
			c := serve(t, srv, b, expireAt(release))

			if err := call(t, c); err != nil { // an answer before the calls: it must not count
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			srv.Block(true)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { errs[i] = call(t, c) })
			}
			for range n {
				<-srv.Blocked()
			}
			srv.Block(false)
			clk.Advance(time.Second)
			if tc.answer {
				if err := call(t, c); err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Second)
			}
			close(release)
			wg.Wait()
			for i, err := range errs {
				if status.Code(err) != codes.DeadlineExceeded {
					t.Fatalf("slow call %d: %v, want DeadlineExceeded", i, err)
				}
			}
			if open := state(b, echo).State == "open"; open != tc.wantOpen {
				t.Errorf("open = %v, want %v (%+v)", open, tc.wantOpen, state(b, echo))
			}
		})
	}
}

// stream starts a stream of echoStream through b's interceptor; the
// returned func ends it with code, as grpc-go's OnFinish would.
func (d *direct) stream(code codes.Code) (finish func()) {
	d.t.Helper()
	var onFinish func(error)
	streamer := func(_ context.Context, _ *grpc.StreamDesc, _ *grpc.ClientConn, _ string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		for _, o := range opts {
			if f, ok := o.(grpc.OnFinishCallOption); ok {
				onFinish = f.OnFinish
			}
		}
		return nil, nil
	}
	if _, err := d.b.StreamClientInterceptor()(d.t.Context(), &grpc.StreamDesc{ServerStreams: true}, d.cc, echoStream, streamer); err != nil {
		d.t.Fatalf("stream: %v", err)
	}
	if onFinish == nil {
		d.t.Fatal("the interceptor set no OnFinish")
	}
	return func() {
		d.clk.Advance(time.Millisecond)
		onFinish(fake(code))
	}
}

func TestStreamDeadlineExceeded(t *testing.T) {
	const n = 3
	t.Run("busy", func(t *testing.T) {
		d := newDirect(t, consecutiveOnly(n, time.Hour))
		var slow []func()
		for range 2 * n {
			slow = append(slow, d.stream(codes.DeadlineExceeded))
		}
		d.stream(codes.OK)() // a stream answered while the others are out
		for _, end := range slow {
			end()
		}
		want := State{Target: target, Method: echoStream, State: "closed", Counts: Counts{Requests: 2*n + 1, TotalSuccesses: 1, TotalExclusions: 2 * n, ConsecutiveSuccesses: 1}}
		if diff := cmp.Diff(want, state(d.b, echoStream)); diff != "" {
			t.Errorf("States (-want +got):\n%s", diff)
		}
	})
	t.Run("silent", func(t *testing.T) {
		d := newDirect(t, consecutiveOnly(n, time.Hour))
		d.stream(codes.OK)()
		d.clk.Advance(time.Millisecond)
		var slow []func()
		for range n {
			slow = append(slow, d.stream(codes.DeadlineExceeded))
		}
		// An answer on another method is no sign of life for this one.
		d.call(codes.OK, nil)
		for _, end := range slow {
			end()
		}
		if got := state(d.b, echoStream).State; got != "open" {
			t.Errorf("state = %q, want open", got)
		}
	})
	t.Run("resource exhausted", func(t *testing.T) {
		d := newDirect(t, consecutiveOnly(1, time.Hour))
		for range 10 {
			d.stream(codes.ResourceExhausted)()
		}
		if got := state(d.b, echoStream); got.State != "closed" || got.TotalSuccesses != 10 {
			t.Errorf("state = %+v, want closed with 10 successes", got)
		}
	})
}
