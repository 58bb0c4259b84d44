package breaker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/statuscode"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"triggers off", func(c *Config) { c.ConsecutiveFailures, c.FailureRatio = 0, 0 }, ""},
		{"interval off", func(c *Config) { c.Interval = 0 }, ""},
		{"ratio above 1", func(c *Config) { c.FailureRatio = 1.5 }, "breaker: failure_ratio"},
		{"ratio negative", func(c *Config) { c.FailureRatio = -0.1 }, "breaker: failure_ratio"},
		{"interval negative", func(c *Config) { c.Interval = -1 }, "breaker: interval"},
		{"open timeout 0", func(c *Config) { c.OpenTimeout = 0 }, "breaker: open_timeout"},
		{"half open 0", func(c *Config) { c.HalfOpenRequests = 0 }, "breaker: half_open_requests"},
		{"deadline failure", func(c *Config) { c.DeadlineExceeded = statuscode.DeadlineFailure }, ""},
		{"deadline ignore", func(c *Config) { c.DeadlineExceeded = statuscode.DeadlineIgnore }, ""},
		{"deadline unknown", func(c *Config) { c.DeadlineExceeded = "sometimes" }, "breaker: deadline_exceeded"},
		{"deadline empty", func(c *Config) { c.DeadlineExceeded = "" }, "breaker: deadline_exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want prefix %q", err, tc.wantErr)
			}
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestConfigText(t *testing.T) {
	want := Config{
		ConsecutiveFailures: 3,
		FailureRatio:        0.25,
		MinRequests:         7,
		Interval:            duration.Duration(90 * time.Second),
		OpenTimeout:         duration.Duration(250 * time.Millisecond),
		HalfOpenRequests:    2,
		DeadlineExceeded:    statuscode.DeadlineFailure,
	}
	in := `{"consecutive_failures":3,"failure_ratio":0.25,"min_requests":7,"interval":"1m30s","open_timeout":"250ms","half_open_requests":2,"deadline_exceeded":"failure"}`
	var got Config
	if err := json.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("encoded %s, want %s", out, in)
	}
	if err := json.Unmarshal([]byte(`{"interval":"ten seconds"}`), &got); err == nil {
		t.Error("decoding a bad duration succeeded")
	}
}
