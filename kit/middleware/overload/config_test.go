package overload

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/grpckit/grpckit/kit/duration"
)

func TestConfigKeys(t *testing.T) {
	var got LimiterConfig
	const in = `
mode: fixed
fixed_limit: 7
initial_limit: 9
min_limit: 2
max_limit: 50
smoothing: 0.5
tolerance: 2
window: 1s
min_samples: 3
baseline_windows: 10
probe_interval: 5s
`
	if err := yaml.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := LimiterConfig{Mode: ModeFixed, FixedLimit: 7, InitialLimit: 9, MinLimit: 2, MaxLimit: 50,
		Smoothing: 0.5, Tolerance: 2, Window: duration.Duration(time.Second), MinSamples: 3, BaselineWindows: 10,
		ProbeInterval: duration.Duration(5 * time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("yaml (-want +got):\n%s", diff)
	}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"mode":"fixed","fixed_limit":7,"initial_limit":9,"min_limit":2,"max_limit":50,"smoothing":0.5,"tolerance":2,"window":"1s","min_samples":3,"baseline_windows":10,"probe_interval":"5s"}`
	if string(b) != wantJSON {
		t.Errorf("json = %s, want %s", b, wantJSON)
	}
	b, err = json.Marshal(DefaultThrottleConfig())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"k":2,"window":"500ms","min_requests":20}`; string(b) != want {
		t.Errorf("throttle json = %s, want %s", b, want)
	}
}

func TestDefaultsValid(t *testing.T) {
	if err := DefaultLimiterConfig().Validate(); err != nil {
		t.Error(err)
	}
	if err := DefaultThrottleConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// FuzzLimiterConfig checks that whatever JSON a config file holds, a config
// that validates gives a working limiter within its bounds, and one that
// does not is refused by SetConfig without a change.
func FuzzLimiterConfig(f *testing.F) {
	f.Add(`{"mode":"adaptive","min_limit":1,"max_limit":2,"initial_limit":2}`)
	f.Add(`{"mode":"fixed","fixed_limit":-1}`)
	f.Add(`{"smoothing":1,"tolerance":1,"window":"1ns","min_samples":1,"baseline_windows":1}`)
	f.Add(`{"max_limit":1073741824,"initial_limit":1073741824}`)
	f.Fuzz(func(t *testing.T, in string) {
		cfg := DefaultLimiterConfig()
		if json.Unmarshal([]byte(in), &cfg) != nil {
			return
		}
		l, clk := newTestLimiter(t, DefaultLimiterConfig())
		before := l.Config()
		if err := l.SetConfig(cfg); err != nil {
			if l.Config() != before {
				t.Fatalf("refused config %+v changed the config", cfg)
			}
			return
		}
		for i := range 50 {
			r, ok := l.Acquire()
			clk.Advance(time.Duration(i%7) * time.Millisecond)
			if ok {
				r(true)
			}
			switch lim := l.Limit(); cfg.Mode {
			case ModeOff:
				if lim != 0 {
					t.Fatalf("off: Limit() = %d", lim)
				}
			case ModeFixed:
				if lim != cfg.FixedLimit {
					t.Fatalf("fixed: Limit() = %d, want %d", lim, cfg.FixedLimit)
				}
			default:
				if lim < cfg.MinLimit || lim > cfg.MaxLimit {
					t.Fatalf("adaptive: Limit() = %d outside [%d, %d]", lim, cfg.MinLimit, cfg.MaxLimit)
				}
			}
		}
		if n := l.InFlight(); n != 0 {
			t.Fatalf("InFlight() = %d", n)
		}
	})
}

// FuzzThrottleConfig checks that a throttle config that validates gives
// probabilities within [0, 1].
func FuzzThrottleConfig(f *testing.F) {
	f.Add(`{"k":1,"window":"1ms","min_requests":0}`)
	f.Add(`{"k":-1}`)
	f.Add(`{"window":"-5s"}`)
	f.Fuzz(func(t *testing.T, in string) {
		cfg := DefaultThrottleConfig()
		if json.Unmarshal([]byte(in), &cfg) != nil {
			return
		}
		th, err := NewThrottle(cfg)
		if err != nil {
			return
		}
		clk := newClock()
		th.now = clk.Now
		for i := range 50 {
			th.Allow()
			th.Record(i%3 == 0)
			clk.Advance(time.Duration(i) * time.Millisecond)
			if p := th.Probability(); p < 0 || p > 1 {
				t.Fatalf("Probability() = %v", p)
			}
		}
	})
}
