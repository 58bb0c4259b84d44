package overload

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"

	"github.com/grpckit/grpckit/kit/duration"
)

func newTestLimiter(t *testing.T, cfg LimiterConfig) (*Limiter, *fakeclock.Clock) {
	t.Helper()
	clk := newClock()
	l := &Limiter{now: clk.Now}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.setConfigLocked(cfg, nil)
	l.mu.Unlock()
	return l, clk
}

// adaptive is a small adaptive config whose windows close after 10 samples
// and 100ms.
func adaptive() LimiterConfig {
	cfg := DefaultLimiterConfig()
	cfg.InitialLimit, cfg.MinLimit, cfg.MaxLimit = 20, 5, 60
	cfg.Window = duration.Duration(100 * time.Millisecond)
	cfg.MinSamples = 10
	cfg.Smoothing = 0.5
	return cfg
}

// window runs one sample window: n calls at once, each lasting latency.
func window(t *testing.T, l *Limiter, clk *fakeclock.Clock, n int, latency time.Duration) {
	t.Helper()
	// Let the window's time pass first, so that it closes with its last
	// sample and the latencies measured are the calls' own.
	clk.Advance(time.Duration(l.Config().Window))
	releases := make([]func(bool), 0, n)
	for range n {
		release, ok := l.Acquire()
		if !ok {
			break
		}
		releases = append(releases, release)
	}
	clk.Advance(latency)
	for _, r := range releases {
		r(true)
	}
	// Calls are not always enough: top the window up to MinSamples.
	for range l.Config().MinSamples - len(releases) {
		r, ok := l.Acquire()
		if !ok {
			t.Fatal("Acquire refused with nothing in flight")
		}
		clk.Advance(latency)
		r(true)
	}
}

func TestLimiterRisesUnderHeadroom(t *testing.T) {
	l, clk := newTestLimiter(t, adaptive())
	// Latency at the baseline with the limit used in full: the limit grows
	// every window, up to the ceiling and no further.
	prev := l.Limit()
	for i := range 40 {
		window(t, l, clk, l.Limit(), 10*time.Millisecond)
		got := l.Limit()
		if got < prev {
			t.Fatalf("window %d: limit fell from %d to %d at baseline latency", i, prev, got)
		}
		if got > 60 {
			t.Fatalf("window %d: limit %d above max_limit 60", i, got)
		}
		prev = got
	}
	if prev != 60 {
		t.Errorf("limit after 40 windows at baseline = %d, want max_limit 60", prev)
	}
}

func TestLimiterFallsWhenLatencyGrows(t *testing.T) {
	l, clk := newTestLimiter(t, adaptive())
	for range 5 {
		window(t, l, clk, l.Limit(), 10*time.Millisecond)
	}
	start := l.Limit()
	// Latency four times the baseline: the limit falls every window down
	// to the floor and no lower. The calls of a window are released at one
	// instant, so the window that closes with the first of them holds the
	// samples of the window before: allow that one window of lag.
	window(t, l, clk, l.Limit(), 40*time.Millisecond)
	prev := l.Limit()
	for i := range 30 {
		window(t, l, clk, l.Limit(), 40*time.Millisecond)
		got := l.Limit()
		if got > prev {
			t.Fatalf("window %d: limit rose from %d to %d under congestion", i, prev, got)
		}
		if got < 5 {
			t.Fatalf("window %d: limit %d below min_limit 5", i, got)
		}
		prev = got
	}
	if prev != 5 {
		t.Errorf("limit after 30 congested windows = %d (from %d), want min_limit 5", prev, start)
	}
	// Congestion over: the limit climbs back.
	for range 30 {
		window(t, l, clk, l.Limit(), 10*time.Millisecond)
	}
	if got := l.Limit(); got < 20 {
		t.Errorf("limit 30 windows after the congestion = %d, want back above 20", got)
	}
}

func TestLimiterAppLimitedKeepsLimit(t *testing.T) {
	l, clk := newTestLimiter(t, adaptive())
	// One call at a time uses less than half of 20: the limit says nothing.
	for range 10 {
		window(t, l, clk, 1, 10*time.Millisecond)
	}
	if got := l.Limit(); got != 20 {
		t.Errorf("limit after app-limited windows = %d, want 20", got)
	}
}

func TestLimiterIgnoresNotOKSamples(t *testing.T) {
	l, clk := newTestLimiter(t, adaptive())
	for range 5 {
		window(t, l, clk, l.Limit(), 10*time.Millisecond)
	}
	prev := l.Limit()
	// Slow calls that do not count (canceled, say) move nothing.
	for range 100 {
		r, ok := l.Acquire()
		if !ok {
			t.Fatal("refused")
		}
		clk.Advance(time.Second)
		r(false)
	}
	if got := l.Limit(); got != prev {
		t.Errorf("limit moved from %d to %d on samples released with ok false", prev, got)
	}
	if got := l.InFlight(); got != 0 {
		t.Errorf("InFlight() = %d, want 0", got)
	}
}

func TestLimiterOffAlwaysAllows(t *testing.T) {
	cfg := DefaultLimiterConfig()
	cfg.Mode = ModeOff
	l, _ := newTestLimiter(t, cfg)
	for i := range 5000 {
		if _, ok := l.Acquire(); !ok {
			t.Fatalf("call %d refused in off mode", i)
		}
	}
	if got := l.InFlight(); got != 5000 {
		t.Errorf("InFlight() = %d, want 5000", got)
	}
	if got := l.Limit(); got != 0 {
		t.Errorf("Limit() = %d in off mode, want 0", got)
	}
}

func TestLimiterFixedAllowsExactlyN(t *testing.T) {
	cfg := DefaultLimiterConfig()
	cfg.Mode, cfg.FixedLimit = ModeFixed, 3
	l, clk := newTestLimiter(t, cfg)
	var releases []func(bool)
	for range 3 {
		r, ok := l.Acquire()
		if !ok {
			t.Fatalf("call %d refused below the fixed limit", len(releases)+1)
		}
		releases = append(releases, r)
	}
	if _, ok := l.Acquire(); ok {
		t.Fatal("fourth call allowed with a fixed limit of 3")
	}
	releases[0](true)
	if _, ok := l.Acquire(); !ok {
		t.Fatal("call refused after a release")
	}
	if _, ok := l.Acquire(); ok {
		t.Fatal("call allowed above the fixed limit after a release")
	}
	// Latency does not move a fixed limit.
	for range 20 {
		r, _ := l.Acquire()
		clk.Advance(time.Minute)
		if r != nil {
			r(true)
		}
	}
	if got := l.Limit(); got != 3 {
		t.Errorf("Limit() = %d, want 3", got)
	}
}

func TestLimiterDoubleRelease(t *testing.T) {
	l, _ := newTestLimiter(t, adaptive())
	r1, _ := l.Acquire()
	_, _ = l.Acquire()
	r1(true)
	r1(true)
	r1(false)
	if got := l.InFlight(); got != 1 {
		t.Errorf("InFlight() after releasing one of two calls three times = %d, want 1", got)
	}
	// The release of a refused call does nothing either.
	cfg := DefaultLimiterConfig()
	cfg.Mode, cfg.FixedLimit = ModeFixed, 1
	f, _ := newTestLimiter(t, cfg)
	_, _ = f.Acquire()
	r, ok := f.Acquire()
	if ok {
		t.Fatal("second call allowed with a fixed limit of 1")
	}
	r(true)
	if got := f.InFlight(); got != 1 {
		t.Errorf("InFlight() after releasing a refused call = %d, want 1", got)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	cfg := adaptive()
	cfg.Mode, cfg.FixedLimit = ModeFixed, 8
	l, clk := newTestLimiter(t, cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				r, ok := l.Acquire()
				if n := l.InFlight(); n > 8 || n < 0 {
					t.Errorf("InFlight() = %d outside [0, 8]", n)
				}
				if !ok {
					continue
				}
				mu.Lock()
				allowed++
				mu.Unlock()
				clk.Advance(time.Millisecond)
				r(i%3 != 0)
				if g%2 == 0 {
					r(true) // a second release must not count
				}
			}
		})
		// Change the mode while calls run: counting must survive it.
		if g == 4 {
			c := adaptive()
			if err := l.SetConfig(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	if got := l.InFlight(); got != 0 {
		t.Errorf("InFlight() after every call released = %d, want 0", got)
	}
	if allowed == 0 {
		t.Error("no call allowed")
	}
}

func TestLimiterSetConfig(t *testing.T) {
	l, _ := newTestLimiter(t, adaptive())
	good := l.Config()
	for _, tc := range []struct {
		name    string
		mutate  func(*LimiterConfig)
		wantErr string
	}{
		{"bad mode", func(c *LimiterConfig) { c.Mode = "on" }, "overload: mode"},
		{"empty mode", func(c *LimiterConfig) { c.Mode = "" }, "overload: mode"},
		{"negative fixed", func(c *LimiterConfig) { c.FixedLimit = -1 }, "overload: fixed_limit"},
		{"zero fixed", func(c *LimiterConfig) { c.FixedLimit = 0 }, "overload: fixed_limit"},
		{"negative min", func(c *LimiterConfig) { c.MinLimit = -4 }, "overload: min_limit"},
		{"min above max", func(c *LimiterConfig) { c.MinLimit, c.MaxLimit = 50, 10 }, "overload: max_limit"},
		{"huge max", func(c *LimiterConfig) { c.MaxLimit = maxLimit + 1 }, "overload: max_limit"},
		{"initial below min", func(c *LimiterConfig) { c.InitialLimit = 1 }, "overload: initial_limit"},
		{"initial above max", func(c *LimiterConfig) { c.InitialLimit = 1000 }, "overload: initial_limit"},
		{"NaN smoothing", func(c *LimiterConfig) { c.Smoothing = nan() }, "overload: smoothing"},
		{"zero smoothing", func(c *LimiterConfig) { c.Smoothing = 0 }, "overload: smoothing"},
		{"smoothing above 1", func(c *LimiterConfig) { c.Smoothing = 1.5 }, "overload: smoothing"},
		{"NaN tolerance", func(c *LimiterConfig) { c.Tolerance = nan() }, "overload: tolerance"},
		{"Inf tolerance", func(c *LimiterConfig) { c.Tolerance = inf() }, "overload: tolerance"},
		{"tolerance below 1", func(c *LimiterConfig) { c.Tolerance = 0.9 }, "overload: tolerance"},
		{"zero window", func(c *LimiterConfig) { c.Window = 0 }, "overload: window"},
		{"negative window", func(c *LimiterConfig) { c.Window = -1 }, "overload: window"},
		{"zero min samples", func(c *LimiterConfig) { c.MinSamples = 0 }, "overload: min_samples"},
		{"zero baseline windows", func(c *LimiterConfig) { c.BaselineWindows = 0 }, "overload: baseline_windows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.mutate(&bad)
			err := l.SetConfig(bad)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("SetConfig() = %v, want prefix %q", err, tc.wantErr)
			}
			if got := l.Config(); got != good {
				t.Errorf("Config() after a refused SetConfig = %+v, want %+v", got, good)
			}
			if got := l.Limit(); got != 20 {
				t.Errorf("Limit() after a refused SetConfig = %d, want 20", got)
			}
			if _, err := NewLimiter(bad); err == nil {
				t.Error("NewLimiter accepted an invalid config")
			}
		})
	}
}

func TestLimiterSetConfigModes(t *testing.T) {
	l, err := NewLimiter(DefaultLimiterConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Limit(), DefaultLimiterConfig().InitialLimit; got != want {
		t.Errorf("default Limit() = %d, want initial_limit %d", got, want)
	}
	cfg := DefaultLimiterConfig()
	cfg.Mode, cfg.FixedLimit = ModeFixed, 7
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.Limit(); got != 7 {
		t.Errorf("fixed Limit() = %d, want 7", got)
	}
	cfg = DefaultLimiterConfig()
	cfg.InitialLimit, cfg.MinLimit = 30, 25
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.Limit(); got != 30 {
		t.Errorf("adaptive Limit() after fixed = %d, want initial_limit 30", got)
	}
	// Same mode: the estimate is kept, clamped to the new bounds.
	cfg.MaxLimit, cfg.InitialLimit = 26, 25
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.Limit(); got != 26 {
		t.Errorf("Limit() after lowering max_limit = %d, want 26", got)
	}
}
