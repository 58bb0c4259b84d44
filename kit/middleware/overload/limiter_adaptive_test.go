package overload

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/fakeclock"
)

// rules is an adaptive config with every field spelled out, so that the
// arithmetic of these tests does not follow the defaults: windows of 100ms
// and 5 samples, a tolerance of 1.5 and a baseline over 600 windows.
func rules() LimiterConfig {
	return LimiterConfig{
		Mode:            ModeAdaptive,
		FixedLimit:      100,
		InitialLimit:    20,
		MinLimit:        5,
		MaxLimit:        60,
		Smoothing:       0.5,
		Tolerance:       1.5,
		Window:          duration.Duration(100 * time.Millisecond),
		MinSamples:      5,
		BaselineWindows: 600,
		ProbeInterval:   duration.Duration(10 * time.Second),
	}
}

// start starts n calls at once and returns the releases of those the
// limiter allowed and the number it refused.
func start(l *Limiter, n int) (releases []func(bool), refused int) {
	for range n {
		r, ok := l.Acquire()
		if !ok {
			refused++
			continue
		}
		releases = append(releases, r)
	}
	return releases, refused
}

func end(releases []func(bool), ok bool) {
	for _, r := range releases {
		r(ok)
	}
}

// closeWindow runs one sample window of l, which must have just begun
// one: once the window's duration has passed, n calls start at once and
// last latency; the first MinSamples of them to end are the window's
// samples, each of latency, with n calls in flight, and the window closes
// with the last of them. The other calls end as no samples. It returns the
// number of calls refused.
func closeWindow(t *testing.T, l *Limiter, clk *fakeclock.Clock, n int, latency time.Duration) (refused int) {
	t.Helper()
	cfg := l.Config()
	clk.Advance(time.Duration(cfg.Window))
	calls, refused := start(l, n)
	if len(calls) < cfg.MinSamples {
		t.Fatalf("%d of %d calls allowed, fewer than min_samples %d", len(calls), n, cfg.MinSamples)
	}
	clk.Advance(latency)
	end(calls[:cfg.MinSamples], true)
	end(calls[cfg.MinSamples:], false)
	return refused
}

// estimate returns l's adaptive limit before rounding down.
func estimate(l *Limiter) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.estimate
}

// baseline returns l's long-term latency.
func baseline(l *Limiter) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(math.Round(l.baseline * float64(time.Second)))
}

func TestLimiterSlowStartDoublesUntilCongestion(t *testing.T) {
	cfg := rules()
	cfg.InitialLimit, cfg.MinLimit, cfg.MaxLimit = 5, 5, 400
	l, clk := newTestLimiter(t, cfg)

	// Windows at the baseline with the limit used in full: the limit
	// doubles each window up to max_limit.
	var got []int
	for range 8 {
		closeWindow(t, l, clk, l.Limit(), 10*time.Millisecond)
		got = append(got, l.Limit())
	}
	if diff := cmp.Diff([]int{10, 20, 40, 80, 160, 320, 400, 400}, got); diff != "" {
		t.Fatalf("limits in slow start (-want +got):\n%s", diff)
	}

	// One congested window ends slow start.
	closeWindow(t, l, clk, l.Limit(), 20*time.Millisecond)
	if got := l.Limit(); got >= 400 {
		t.Fatalf("limit after a window at twice the baseline = %d, want below 400", got)
	}
	// From then on, a window at the baseline adds the square root of the
	// estimate, times smoothing: no doubling.
	for i := range 5 {
		prev := estimate(l)
		closeWindow(t, l, clk, l.Limit(), 10*time.Millisecond)
		want := prev + math.Sqrt(prev)*cfg.Smoothing
		if got := estimate(l); math.Abs(got-want) > 1e-9 {
			t.Errorf("window %d after congestion: estimate %v -> %v, want %v (+ sqrt * smoothing)", i, prev, got, want)
		}
		if got, want := l.Limit(), int(estimate(l)); got != want {
			t.Errorf("window %d after congestion: Limit() = %d, want the estimate rounded down, %d", i, got, want)
		}
	}
}

func TestLimiterFallAppliesAtOnce(t *testing.T) {
	cfg := rules()
	cfg.InitialLimit, cfg.MinLimit, cfg.MaxLimit = 10, 10, 400
	l, clk := newTestLimiter(t, cfg)
	for range 3 {
		closeWindow(t, l, clk, l.Limit(), 10*time.Millisecond) // 20, 40, 80
	}
	if got := l.Limit(); got != 80 {
		t.Fatalf("limit after three windows of slow start = %d, want 80", got)
	}

	// A window at twice the baseline: the baseline moves by 2/601 of the
	// excess, to 10ms × (1 + 2/601), the gradient is 1.5 × that / 20ms =
	// 0.7525, and the limit is 80 × 0.7525 + √80 = 69.14, unsmoothed (the
	// smoothed value would be 74.57).
	closeWindow(t, l, clk, 80, 20*time.Millisecond)
	b := 0.01 * (1 + 2.0/601)
	want := 80*(1.5*b/0.02) + math.Sqrt(80)
	if got := estimate(l); math.Abs(got-want) > 1e-9 {
		t.Errorf("estimate after one congested window = %v, want %v", got, want)
	}
	if got := l.Limit(); got != 69 {
		t.Errorf("limit after one congested window = %d, want 69", got)
	}

	// At eight times the baseline the gradient is at its floor of 0.5: each
	// window halves the estimate and adds its square root, down to
	// min_limit and never below it.
	for i := range 10 {
		prev := estimate(l)
		closeWindow(t, l, clk, l.Limit(), 80*time.Millisecond)
		want := max(prev*0.5+math.Sqrt(prev), 10)
		if got := estimate(l); math.Abs(got-want) > 1e-9 {
			t.Errorf("window %d at 8x: estimate %v -> %v, want %v", i, prev, got, want)
		}
		if got := l.Limit(); got < 10 {
			t.Fatalf("window %d at 8x: limit %d below min_limit 10", i, got)
		}
	}
	if got := l.Limit(); got != 10 {
		t.Errorf("limit after 10 windows at 8x the baseline = %d, want min_limit 10", got)
	}
}

func TestLimiterTolerance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		latency time.Duration
		want    int
	}{
		// Within the tolerance of 1.5: no congestion, slow start doubles.
		{"1.4x the baseline", 14 * time.Millisecond, 40},
		// Beyond it: congestion. The baseline moves to 10ms + 6ms × 2/601,
		// the gradient is 1.5 × that / 16ms = 0.939, and 20 × 0.939 + √20
		// = 23.26 is above 20: too mild to make the limit fall, so slow
		// start holds it.
		{"1.6x the baseline", 16 * time.Millisecond, 20},
		// Far beyond: the gradient is at its floor of 0.5, and
		// 20 × 0.5 + √20 = 14.47: the limit falls at once.
		{"4x the baseline", 40 * time.Millisecond, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rules()
			cfg.InitialLimit, cfg.MaxLimit = 10, 400
			l, clk := newTestLimiter(t, cfg)
			closeWindow(t, l, clk, 10, 10*time.Millisecond)
			closeWindow(t, l, clk, 20, tc.latency)
			if got := l.Limit(); got != tc.want {
				t.Errorf("limit after a window at 10ms and one at %v = %d, want %d", tc.latency, got, tc.want)
			}
		})
	}
}

func TestLimiterProbe(t *testing.T) {
	l, clk := newTestLimiter(t, rules())
	closeWindow(t, l, clk, 20, 10*time.Millisecond)
	if got := l.Limit(); got != 40 {
		t.Fatalf("limit after one window of slow start = %d, want 40", got)
	}

	// A window in which a call is refused: at its close a probe holds the
	// limit at min_limit, and the window moves nothing (the probe will
	// tell whether its latency was queue).
	clk.Advance(time.Duration(l.Config().Window))
	calls, refused := start(l, 41)
	if refused != 1 {
		t.Fatalf("%d of 41 calls refused at a limit of 40, want 1", refused)
	}
	clk.Advance(10 * time.Millisecond)
	end(calls[:5], true)
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit at the close of a window with a refusal = %d, want min_limit 5 (probe)", got)
	}

	// The 35 calls in flight when the probe began queued behind the
	// others: their latency is not the probe's, whatever it is.
	clk.Advance(50 * time.Millisecond)
	end(calls[5:], true)
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit after calls older than the probe ended = %d, want still min_limit 5", got)
	}

	// The min_samples calls admitted first in the probe are its group: when
	// all have ended, their median latency is the baseline and the limit
	// is back to the estimate. The group's fast calls ending first do not
	// end the probe.
	probe, refused := start(l, 5)
	if refused != 0 {
		t.Fatalf("%d of 5 calls refused during the probe at a limit of 5", refused)
	}
	clk.Advance(2 * time.Millisecond)
	end(probe[:2], true)
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit after 2 of the 5 calls of the probe's group = %d, want still min_limit 5", got)
	}
	clk.Advance(2 * time.Millisecond)
	end(probe[2:], true)
	if got := l.Limit(); got != 40 {
		t.Fatalf("limit at the end of the probe = %d, want the estimate, 40", got)
	}
	if got := baseline(l); got != 4*time.Millisecond {
		t.Errorf("baseline after the probe = %v, want the group's median, 4ms", got)
	}

	// Refused again within probe_interval (10s): no probe; slow start
	// again after the probe, so the limit doubles to max_limit 60.
	for i := range 3 {
		closeWindow(t, l, clk, l.Limit()+1, 4*time.Millisecond)
		if got := l.Limit(); got != 60 {
			t.Fatalf("window %d within probe_interval with a refusal: limit %d, want 60 (no probe)", i, got)
		}
	}
	// Once probe_interval has passed since the last probe, the next window
	// with a refusal probes; a window without one does not.
	clk.Advance(10 * time.Second)
	closeWindow(t, l, clk, 60, 4*time.Millisecond)
	if got := l.Limit(); got != 60 {
		t.Fatalf("limit after a window without refusals = %d, want 60 (no probe)", got)
	}
	closeWindow(t, l, clk, 61, 4*time.Millisecond)
	if got := l.Limit(); got != 5 {
		t.Errorf("limit at the first window after probe_interval = %d, want min_limit 5 (probe)", got)
	}
}

func TestLimiterNoProbeWithoutRefusal(t *testing.T) {
	l, clk := newTestLimiter(t, rules())
	for i := range 5 {
		closeWindow(t, l, clk, l.Limit(), 10*time.Millisecond)
		clk.Advance(time.Minute)
		if got := l.Limit(); got == 5 {
			t.Fatalf("window %d: limit at min_limit 5 with no call refused", i)
		}
	}
	if got := l.Refused(); got != 0 {
		t.Errorf("Refused() = %d, want 0", got)
	}
}

func TestLimiterProbeIntervalZeroProbesOnce(t *testing.T) {
	cfg := rules()
	cfg.ProbeInterval = 0
	l, clk := newTestLimiter(t, cfg)
	closeWindow(t, l, clk, 21, 10*time.Millisecond)
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit after the first window with a refusal = %d, want min_limit 5 (probe)", got)
	}
	probe, _ := start(l, 5)
	clk.Advance(10 * time.Millisecond)
	end(probe, true)
	if got := l.Limit(); got != 20 {
		t.Fatalf("limit at the end of the probe = %d, want the estimate, 20", got)
	}
	for i := range 5 {
		clk.Advance(time.Hour)
		if n := closeWindow(t, l, clk, l.Limit()+1, 10*time.Millisecond); n != 1 {
			t.Fatalf("window %d: %d calls refused, want 1", i, n)
		}
		if got := l.Limit(); got == 5 {
			t.Fatalf("window %d, hours after the first probe: limit at min_limit 5, want no second probe with probe_interval 0", i)
		}
	}
}

// TestLimiterProbeCorrectsBaseline: a limiter whose first window is already
// congested takes that latency for its baseline; the probe its refusals
// bring measures the latency without a queue, so that the same congested
// latency then counts as congestion.
func TestLimiterProbeCorrectsBaseline(t *testing.T) {
	const congested, uncongested = 50 * time.Millisecond, 10 * time.Millisecond

	t.Run("without a probe", func(t *testing.T) {
		l, clk := newTestLimiter(t, rules())
		closeWindow(t, l, clk, 20, congested)
		closeWindow(t, l, clk, 40, congested)
		if got := l.Limit(); got != 60 {
			t.Errorf("limit after two windows at the first window's latency = %d, want 60 (no congestion seen)", got)
		}
	})

	t.Run("with a probe", func(t *testing.T) {
		l, clk := newTestLimiter(t, rules())
		if n := closeWindow(t, l, clk, 21, congested); n != 1 {
			t.Fatalf("%d of 21 calls refused at a limit of 20, want 1", n)
		}
		if got := l.Limit(); got != 5 {
			t.Fatalf("limit after a first window with a refusal = %d, want min_limit 5 (probe)", got)
		}
		probe, _ := start(l, 5)
		clk.Advance(uncongested)
		end(probe, true)
		if got := baseline(l); got != uncongested {
			t.Fatalf("baseline after the probe = %v, want %v", got, uncongested)
		}
		if got := l.Limit(); got != 20 {
			t.Fatalf("limit at the end of the probe = %d, want the estimate, 20", got)
		}
		// 50ms is now five times the baseline: the gradient is at its floor,
		// and the limit falls to 20 × 0.5 + √20 = 14.
		closeWindow(t, l, clk, 20, congested)
		if got := l.Limit(); got != 14 {
			t.Errorf("limit after a window at the first window's latency = %d, want 14 (congestion)", got)
		}
	})
}

func TestLimiterRefusedCounts(t *testing.T) {
	cfg := rules()
	cfg.Mode, cfg.FixedLimit = ModeFixed, 2
	l, _ := newTestLimiter(t, cfg)
	calls, refused := start(l, 5)
	if refused != 3 {
		t.Fatalf("%d of 5 calls refused at a fixed limit of 2, want 3", refused)
	}
	if got := l.Refused(); got != 3 {
		t.Errorf("Refused() = %d, want 3", got)
	}
	end(calls[:1], true)
	if _, ok := l.Acquire(); !ok {
		t.Fatal("call refused after a release")
	}
	if got := l.Refused(); got != 3 {
		t.Errorf("Refused() after an allowed call = %d, want still 3", got)
	}
	// A change of configuration keeps the count; the off mode refuses
	// nothing more.
	cfg.Mode = ModeOff
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	start(l, 10)
	if got := l.Refused(); got != 3 {
		t.Errorf("Refused() after 10 calls in off mode = %d, want still 3", got)
	}
}

// TestLimiterMildCongestionAfterSlowStart: once slow start has ended, a
// congestion too mild to make the limit fall lets it rise, smoothed.
func TestLimiterMildCongestionAfterSlowStart(t *testing.T) {
	cfg := rules()
	cfg.InitialLimit, cfg.MaxLimit = 10, 400
	l, clk := newTestLimiter(t, cfg)
	closeWindow(t, l, clk, 10, 10*time.Millisecond)
	closeWindow(t, l, clk, 20, 40*time.Millisecond) // falls: slow start ends
	prev := estimate(l)
	closeWindow(t, l, clk, l.Limit(), 11*time.Millisecond)
	if got := estimate(l); got <= prev || got >= 2*prev {
		t.Errorf("estimate %v -> %v after a window within the tolerance, want a smoothed rise, not a doubling", prev, got)
	}
	prev = estimate(l)
	// Just beyond the tolerance of the (risen) baseline: too mild to fall.
	closeWindow(t, l, clk, l.Limit(), 16*time.Millisecond)
	if got := estimate(l); got < prev || got > prev+math.Sqrt(prev) {
		t.Errorf("estimate %v -> %v after a mildly congested window, want a smoothed rise", prev, got)
	}
}

// TestLimiterRecoversFromSlowerServer: latency triples with no queue (a
// slower dependency). The limit falls to its floor, where probes soon
// measure the new latency, and slow start brings the limit back up: the
// server is not held at its floor until probe_interval.
func TestLimiterRecoversFromSlowerServer(t *testing.T) {
	cfg := rules()
	cfg.ProbeInterval = duration.Duration(time.Hour)
	l, clk := newTestLimiter(t, cfg)
	closeWindow(t, l, clk, 20, 10*time.Millisecond)
	for range 3 {
		closeWindow(t, l, clk, l.Limit(), 10*time.Millisecond)
	}
	// The first refusals probed once already: drain that probe.
	for l.Limit() == cfg.MinLimit {
		calls, _ := start(l, cfg.MinLimit)
		clk.Advance(10 * time.Millisecond)
		end(calls, true)
	}
	high := l.Limit()
	// Every call now takes 30ms whatever the load; the server refuses what
	// is beyond the limit.
	slow := func() {
		clk.Advance(time.Duration(cfg.Window))
		calls, _ := start(l, l.Limit()+1)
		clk.Advance(30 * time.Millisecond)
		end(calls, true)
	}
	atFloor := 0
	for range 40 {
		slow()
		if l.Limit() == cfg.MinLimit {
			atFloor++
		}
	}
	if got := l.Limit(); got < high/2 {
		t.Errorf("limit after 40 windows at 3x the latency without a queue = %d (from %d), want it back up", got, high)
	}
	if got := baseline(l); got < 25*time.Millisecond {
		t.Errorf("baseline = %v, want the new latency (30ms) measured by a probe", got)
	}
	t.Logf("limit %d -> %d; %d of 40 windows at the floor", high, l.Limit(), atFloor)
}

// TestLimiterProbeExpires: a probe whose places are all held by calls that
// started before it (long calls) ends after two windows' time instead of
// refusing everything until they end.
func TestLimiterProbeExpires(t *testing.T) {
	l, clk := newTestLimiter(t, rules())
	closeWindow(t, l, clk, 20, 10*time.Millisecond)
	clk.Advance(time.Duration(l.Config().Window))
	calls, _ := start(l, 41)
	clk.Advance(10 * time.Millisecond)
	end(calls[:5], true) // the window closes with a refusal: probe
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit = %d, want min_limit 5 (probe)", got)
	}
	// 35 long calls hold every place: no call of the probe's group is
	// admitted. Within its time the probe holds.
	clk.Advance(2 * time.Duration(l.Config().Window))
	if _, ok := l.Acquire(); ok {
		t.Fatal("a call allowed while 35 are in flight at a limit of 5")
	}
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit within the probe's time = %d, want min_limit 5", got)
	}
	// Two windows plus four rounds of the 10ms baseline: it gives up, and
	// the baseline stays, for no call of its group was admitted.
	clk.Advance(40 * time.Millisecond)
	if _, ok := l.Acquire(); ok {
		t.Fatal("a call allowed while 35 are in flight at a limit of 5")
	}
	if got := l.Limit(); got != 40 {
		t.Errorf("limit after the probe outlived its time = %d, want the estimate back, 40", got)
	}
	if got := baseline(l); got != 10*time.Millisecond {
		t.Errorf("baseline after a probe without a call = %v, want it kept, 10ms", got)
	}
	end(calls[5:], true)
}

// TestLimiterProbeGroupStillOut: a probe that gives up counts the calls of
// its group still out as lasting until then, so slow calls raise the
// baseline rather than leave only the fast ones to set it.
func TestLimiterProbeGroupStillOut(t *testing.T) {
	l, clk := newTestLimiter(t, rules())
	clk.Advance(time.Duration(l.Config().Window))
	calls, _ := start(l, 21)
	clk.Advance(10 * time.Millisecond)
	end(calls, true) // a first window with a refusal: probe
	group, _ := start(l, 5)
	clk.Advance(2 * time.Millisecond)
	end(group[:2], true) // 2 fast calls; the 3 others are slow
	clk.Advance(time.Second)
	// Other calls fill the places; the next one is refused, and the
	// refusal finds the probe past its time.
	others, refused := start(l, 3)
	if refused != 1 {
		t.Fatalf("%d of 3 calls refused with 3 in flight at min_limit 5, want 1", refused)
	}
	if got, want := baseline(l), time.Second+2*time.Millisecond; got != want {
		t.Errorf("baseline = %v, want the group's median with the slow calls counted until the probe gave up, %v", got, want)
	}
	end(group[2:], true)
	end(others, true)
}

// TestLimiterGrowsWithoutSamples: when every place is held by calls that
// give no sample (streams) and others are refused, the limit rises blindly
// instead of refusing them for as long as those calls last.
func TestLimiterGrowsWithoutSamples(t *testing.T) {
	cfg := rules()
	cfg.MaxLimit = 1000
	l, clk := newTestLimiter(t, cfg)
	closeWindow(t, l, clk, 20, 10*time.Millisecond) // baseline 10ms, limit 40
	var held []func(bool)
	for i := range 3 {
		streams, _ := start(l, l.Limit()-l.InFlight()) // every place held
		held = append(held, streams...)
		clk.Advance(2*time.Duration(cfg.Window) + 40*time.Millisecond)
		before := l.Limit()
		if _, ok := l.Acquire(); ok {
			t.Fatalf("round %d: a call allowed with every place held", i)
		}
		if got := l.Limit(); got <= before {
			t.Fatalf("round %d: limit %d after a window without a sample and with refusals, want above %d", i, got, before)
		}
	}
	end(held, false)
}

// TestLimiterModeSwitchKeepsCallsInFlight: a switch to adaptive with more
// calls in flight than initial_limit starts from those calls, so that it
// does not refuse everything until they end.
func TestLimiterModeSwitchKeepsCallsInFlight(t *testing.T) {
	cfg := rules()
	cfg.Mode = ModeOff
	l, _ := newTestLimiter(t, cfg)
	calls, _ := start(l, 50)
	cfg.Mode = ModeAdaptive
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.Limit(); got != 50 {
		t.Errorf("limit after switching to adaptive with 50 calls in flight = %d, want 50", got)
	}
	end(calls, false)
}

// TestLimiterFirstWindowQueued: a server started under load queues from
// its first calls and refuses some; the probe those refusals bring measures
// the latency without a queue before the first window moves anything, so
// that the queue is not taken for normal latency.
func TestLimiterFirstWindowQueued(t *testing.T) {
	cfg := rules()
	cfg.MinSamples = 20 // the first window holds all 20 calls
	l, clk := newTestLimiter(t, cfg)
	clk.Advance(time.Duration(l.Config().Window))
	calls, refused := start(l, 25)
	if refused != 5 {
		t.Fatalf("%d of 25 calls refused at a limit of 20, want 5", refused)
	}
	// 4 calls at 5ms, the rest queued behind them up to 25ms.
	for i, c := range calls {
		if i%4 == 0 {
			clk.Advance(5 * time.Millisecond)
		}
		c(true)
	}
	if got := l.Limit(); got != 5 {
		t.Fatalf("limit after a first window whose calls queued = %d, want min_limit 5 (probe)", got)
	}
	for range 4 { // the group: min_samples calls at min_limit
		probe, _ := start(l, 5)
		clk.Advance(5 * time.Millisecond)
		end(probe, true)
	}
	if got := baseline(l); got != 5*time.Millisecond {
		t.Errorf("baseline = %v, want 5ms, the latency without a queue", got)
	}
	if got := l.Limit(); got != 20 {
		t.Errorf("limit after the probe = %d, want initial_limit 20, unmoved by the queued window", got)
	}
	// At 20 in flight the calls queue again (25ms): the limit falls.
	closeWindow(t, l, clk, l.Limit(), 25*time.Millisecond)
	if got := l.Limit(); got >= 20 {
		t.Errorf("limit after a window at 5x the baseline = %d, want below 20", got)
	}
}
