package overload

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"

	"github.com/grpckit/grpckit/kit/duration"
)

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }

func newTestThrottle(t *testing.T, cfg ThrottleConfig) (*Throttle, *fakeclock.Clock) {
	t.Helper()
	th, err := NewThrottle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	th.now = clk.Now
	th.rand = rand.New(rand.NewPCG(1, 2)).Float64
	return th, clk
}

// feed sends n requests of which the target accepts every accept-th.
func feed(th *Throttle, n, every int) (allowed int) {
	for i := range n {
		if th.Allow() {
			allowed++
		}
		th.Record(i%every == 0)
	}
	return allowed
}

func TestThrottleAllAccepted(t *testing.T) {
	th, _ := newTestThrottle(t, DefaultThrottleConfig())
	if got := feed(th, 1000, 1); got != 1000 {
		t.Errorf("allowed %d of 1000 calls all accepted, want all", got)
	}
	if p := th.Probability(); p != 0 {
		t.Errorf("Probability() = %v with every call accepted, want 0", p)
	}
}

func TestThrottleFollowsAcceptRatio(t *testing.T) {
	for _, tc := range []struct {
		name  string
		k     float64
		every int // one accept in every
		want  float64
	}{
		{"quarter accepted K=2", 2, 4, 0.5},
		{"half accepted K=2", 2, 2, 0},
		{"tenth accepted K=2", 2, 10, 0.8},
		{"quarter accepted K=1", 1, 4, 0.75},
		{"none accepted", 2, math.MaxInt, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultThrottleConfig()
			cfg.K = tc.k
			th, _ := newTestThrottle(t, cfg)
			// Fill the window with the ratio: requests and accepts as the
			// target sees them whether or not the client sent them.
			for i := range 4000 {
				th.mu.Lock()
				b := th.currentLocked(th.now())
				b.requests++
				b.ended++
				if i%tc.every == 0 && tc.every != math.MaxInt {
					b.accepts++
				}
				th.mu.Unlock()
			}
			if p := th.Probability(); math.Abs(p-tc.want) > 0.01 {
				t.Errorf("Probability() = %v, want %v", p, tc.want)
			}
			// Allow refuses with about that probability (seeded source).
			// Each Allow adds a request, so stay well within the counts.
			allowed := 0
			for range 400 {
				if th.Allow() {
					allowed++
				}
			}
			if got := 1 - float64(allowed)/400; math.Abs(got-tc.want) > 0.08 {
				t.Errorf("refused %.3f of 400 calls, want about %v", got, tc.want)
			}
		})
	}
}

func TestThrottleFeedback(t *testing.T) {
	// Every millisecond the client asks for 4 calls and the target accepts
	// one of those sent and refuses the rest. With f the share sent, the
	// accept ratio of the calls sent is 1/(4f), and the throttle settles
	// where 1 − f = p = 1 − K/(4f), that is f² = K/4: the client sends
	// √8 ≈ 2.83 calls per call accepted, not all 4, and p ≈ 0.29. The
	// window outlasts the run, so that the counts are the whole run's.
	cfg := DefaultThrottleConfig()
	cfg.Window = duration.Duration(time.Minute)
	th, clk := newTestThrottle(t, cfg)
	sent, accepted := 0, 0
	for range 20000 {
		served := false
		for range 4 {
			if !th.Allow() {
				continue
			}
			sent++
			th.Record(!served)
			if !served {
				accepted++
				served = true
			}
		}
		clk.Advance(time.Millisecond)
	}
	if ratio := float64(sent) / float64(accepted); ratio < 2.6 || ratio > 3.1 {
		t.Errorf("sent %d for %d accepted (%.2fx), want about √8 = 2.83x", sent, accepted, ratio)
	}
	if accepted < 17500 { // a tick with all 4 shed happens 1 time in 16
		t.Errorf("accepted %d in 20000 ms, want the target kept busy", accepted)
	}
	if p := th.Probability(); math.Abs(p-0.29) > 0.05 {
		t.Errorf("Probability() = %v, want about 1 − √8/4 = 0.29", p)
	}
}

func TestThrottleMinRequests(t *testing.T) {
	cfg := DefaultThrottleConfig()
	cfg.MinRequests = 50
	th, _ := newTestThrottle(t, cfg)
	if got := feed(th, 49, math.MaxInt); got != 49 {
		t.Errorf("allowed %d of the first 49 calls, all refused by the target, want all below min_requests", got)
	}
	if p := th.Probability(); p != 0 {
		t.Errorf("Probability() = %v below min_requests, want 0", p)
	}
	th.Allow()
	if p := th.Probability(); p < 0.9 {
		t.Errorf("Probability() = %v at min_requests with no accepts, want near 1", p)
	}
}

func TestThrottleWindowAgesOut(t *testing.T) {
	cfg := DefaultThrottleConfig()
	cfg.Window = duration.Duration(20 * time.Second) // 1s buckets
	th, clk := newTestThrottle(t, cfg)
	feed(th, 1000, math.MaxInt) // the target accepts nothing
	if p := th.Probability(); p < 0.9 {
		t.Fatalf("Probability() = %v after 1000 refusals, want near 1", p)
	}
	clk.Advance(19 * time.Second)
	if r, _, _ := th.Counts(); r != 1000 {
		t.Errorf("requests 19s later = %d, want 1000 still in the window", r)
	}
	clk.Advance(time.Second)
	if r, _, a := th.Counts(); r != 0 || a != 0 {
		t.Errorf("Counts() one window later = %d, %d, want 0, 0", r, a)
	}
	if p := th.Probability(); p != 0 {
		t.Errorf("Probability() one window later = %v, want 0", p)
	}
	if !th.Allow() {
		t.Error("Allow() refused after the window emptied")
	}
	// Buckets reused for a later slice start from zero.
	clk.Advance(3 * time.Second)
	if r, _, _ := th.Counts(); r != 1 {
		t.Errorf("requests = %d, want 1", r)
	}
}

func TestThrottleSetConfig(t *testing.T) {
	th, _ := newTestThrottle(t, DefaultThrottleConfig())
	feed(th, 100, 1)
	good := th.Config()
	for _, tc := range []struct {
		name    string
		mutate  func(*ThrottleConfig)
		wantErr string
	}{
		{"NaN k", func(c *ThrottleConfig) { c.K = nan() }, "overload: k"},
		{"Inf k", func(c *ThrottleConfig) { c.K = inf() }, "overload: k"},
		{"k below 1", func(c *ThrottleConfig) { c.K = 0.5 }, "overload: k"},
		{"negative k", func(c *ThrottleConfig) { c.K = -2 }, "overload: k"},
		{"zero window", func(c *ThrottleConfig) { c.Window = 0 }, "overload: window"},
		{"tiny window", func(c *ThrottleConfig) { c.Window = duration.Duration(time.Microsecond) }, "overload: window"},
		{"negative min requests", func(c *ThrottleConfig) { c.MinRequests = -1 }, "overload: min_requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.mutate(&bad)
			err := th.SetConfig(bad)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("SetConfig() = %v, want prefix %q", err, tc.wantErr)
			}
			if got := th.Config(); got != good {
				t.Errorf("Config() after a refused SetConfig = %+v, want %+v", got, good)
			}
			if r, _, _ := th.Counts(); r != 100 {
				t.Errorf("requests after a refused SetConfig = %d, want 100", r)
			}
			if _, err := NewThrottle(bad); err == nil {
				t.Error("NewThrottle accepted an invalid config")
			}
		})
	}
	// A valid change of K keeps the counts; a change of window drops them.
	next := good
	next.K = 3
	if err := th.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := th.Counts(); r != 100 {
		t.Errorf("requests after changing k = %d, want 100", r)
	}
	next.Window = duration.Duration(time.Minute)
	if err := th.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := th.Counts(); r != 0 {
		t.Errorf("requests after changing window = %d, want 0", r)
	}
}

// TestThrottleScalesAcceptsToRequests: the accepts count at the accept
// ratio of the calls that ended, applied to every request: 250 accepted of
// 1000 that ended, for 4000 requests, is the ratio 1/4 and gives (4000 −
// 2·1000)/4001 ≈ 0.5, where SRE's unscaled formula would give 0.94.
func TestThrottleScalesAcceptsToRequests(t *testing.T) {
	th, _ := newTestThrottle(t, DefaultThrottleConfig())
	th.mu.Lock()
	b := th.currentLocked(th.now())
	b.requests, b.ended, b.accepts = 4000, 1000, 250
	th.mu.Unlock()
	if p, want := th.Probability(), 2000.0/4001; math.Abs(p-want) > 1e-9 {
		t.Errorf("Probability() = %v, want %v", p, want)
	}
}

// TestThrottleBurstIntoQuietWindow: a burst of calls into a window where
// nothing ended yet is not throttled, however large: calls still out say
// nothing against the target.
func TestThrottleBurstIntoQuietWindow(t *testing.T) {
	th, _ := newTestThrottle(t, DefaultThrottleConfig())
	for i := range 500 {
		if !th.Allow() {
			t.Fatalf("call %d of a burst refused with nothing ended yet", i)
		}
	}
	// Once they end accepted, still nothing is refused.
	for range 500 {
		th.Record(true)
	}
	if p := th.Probability(); p != 0 {
		t.Errorf("Probability() = %v after the burst was accepted, want 0", p)
	}
}
