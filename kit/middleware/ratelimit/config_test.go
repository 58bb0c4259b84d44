package ratelimit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/middleware"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", DefaultConfig(), ""},
		{"all limits", Config{RPS: 100, Burst: 10, MaxCallers: 1, PerCaller: Limit{RPS: 1},
			PerMethod: map[string]Limit{"/a.B/C": {RPS: 1}, "/a.B/*": {}}}, ""},
		{"negative rps", Config{RPS: -1, MaxCallers: 1}, "ratelimit: rps"},
		{"huge rps", Config{RPS: 1e12, MaxCallers: 1}, "ratelimit: rps"},
		{"negative burst", Config{Burst: -1, MaxCallers: 1}, "ratelimit: burst"},
		{"zero", Config{}, ""},
		{"max callers negative", Config{MaxCallers: -1}, "ratelimit: max_callers"},
		{"per caller", Config{MaxCallers: 1, PerCaller: Limit{Burst: -2}}, "ratelimit: per_caller.burst"},
		{"method key without slash", Config{MaxCallers: 1, PerMethod: map[string]Limit{"a.B/C": {}}}, `ratelimit: per_method key "a.B/C"`},
		{"method key without method", Config{MaxCallers: 1, PerMethod: map[string]Limit{"/a.B/": {}}}, `ratelimit: per_method key "/a.B/"`},
		{"method key with a star inside", Config{MaxCallers: 1, PerMethod: map[string]Limit{"/a.B/C*": {}}}, `ratelimit: per_method key "/a.B/C*"`},
		{"method key too deep", Config{MaxCallers: 1, PerMethod: map[string]Limit{"/a/B/C": {}}}, `ratelimit: per_method key "/a/B/C"`},
		{"method limit", Config{MaxCallers: 1, PerMethod: map[string]Limit{"/a.B/C": {RPS: -3}}}, `ratelimit: per_method["/a.B/C"].rps`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want prefix %q", err, tc.wantErr)
			}
			if _, err := New(tc.cfg); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestClientConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     ClientConfig
		wantErr string
	}{
		{"default", DefaultClientConfig(), ""},
		{"limits", ClientConfig{Default: Limit{RPS: 5}, PerMethod: map[string]Limit{"/a.B/*": {RPS: 1, Burst: 3}}}, ""},
		{"default rps", ClientConfig{Default: Limit{RPS: -5}}, "ratelimit: default.rps"},
		{"method key", ClientConfig{PerMethod: map[string]Limit{"*": {}}}, `ratelimit: per_method key "*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want prefix %q", err, tc.wantErr)
			}
			if _, err := NewClient(tc.cfg); err == nil {
				t.Error("NewClient accepted an invalid config")
			}
		})
	}
}

func TestRulesLookup(t *testing.T) {
	r, err := middleware.NewMethodTable(map[string]Limit{
		"/a.B/C": {RPS: 1},
		"/a.B/*": {RPS: 2},
		"/a.B/D": {RPS: 0},
		"/x.Y/Z": {RPS: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Limit Limit
		OK    bool
	}
	for method, want := range map[string]result{
		"/a.B/C":   {Limit{RPS: 1}, true},
		"/a.B/E":   {Limit{RPS: 2}, true},
		"/a.B/D":   {Limit{}, true},
		"/x.Y/Z":   {Limit{RPS: 3}, true},
		"/x.Y/W":   {},
		"/a.Bb/C":  {},
		"nonsense": {},
	} {
		l, ok := r.Lookup(method)
		if diff := cmp.Diff(want, result{l, ok}); diff != "" {
			t.Errorf("lookup(%q) (-want +got):\n%s", method, diff)
		}
	}
}

func TestLimitBurst(t *testing.T) {
	for _, tc := range []struct {
		l    Limit
		want int
	}{
		{Limit{RPS: 0.1}, 1},
		{Limit{RPS: 1}, 1},
		{Limit{RPS: 2.5}, 3},
		{Limit{RPS: 100, Burst: 7}, 7},
	} {
		if got := tc.l.burst(); got != tc.want {
			t.Errorf("%+v.burst() = %d, want %d", tc.l, got, tc.want)
		}
	}
}
