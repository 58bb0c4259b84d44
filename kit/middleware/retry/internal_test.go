package retry

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/duration"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func TestBudgetTokens(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := DefaultConfig() // ratio 0.1, 10 per second
	for _, tc := range []struct {
		name   string
		calls  int           // deposits before withdrawing
		wait   time.Duration // after the deposits
		want   int           // retries allowed
		ratio  float64
		perSec float64
	}{
		{"allowance only", 0, 0, 10, 0.1, 10},
		{"ratio plus allowance", 100, 0, 20, 0.1, 10},
		{"allowance refills one second at most", 0, time.Hour, 10, 0.1, 10},
		{"earned tokens fade", 100, 10 * time.Second, 3 + 10, 0.1, 10}, // 10 * e^-1 = 3.7
		{"no allowance", 100, 0, 10, 0.1, 0},
		{"slow allowance saves one", 0, 0, 1, 0, 0.5},
		{"nothing", 100, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.BudgetRatio, c.BudgetMinRetriesPerSecond = tc.ratio, tc.perSec
			b := newBudget("t", t0)
			for range tc.calls {
				b.deposit(&c, func() time.Time { return t0 })
			}
			b.mu.Lock() // the calls happened at t0: fold them in then
			b.foldLocked(&c, t0)
			b.mu.Unlock()
			now := t0.Add(tc.wait)
			got := 0
			for b.withdraw(&c, now) {
				got++
			}
			if got != tc.want {
				t.Errorf("%d retries allowed, want %d", got, tc.want)
			}
		})
	}
}

func TestBudgetRefill(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := DefaultConfig()
	cfg.BudgetRatio, cfg.BudgetMinRetriesPerSecond = 0, 4
	b := newBudget("t", t0)
	for b.withdraw(&cfg, t0) {
	}
	var got []bool
	for i := range 6 {
		got = append(got, b.withdraw(&cfg, t0.Add(time.Duration(i+1)*125*time.Millisecond)))
	}
	// 4 per second: one token every 250ms.
	if diff := cmp.Diff([]bool{false, true, false, true, false, true}, got); diff != "" {
		t.Errorf("withdrawals every 125ms (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	cc, err := compile(Config{MaxAttempts: 5, InitialBackoff: duration.Duration(100 * time.Millisecond), MaxBackoff: duration.Duration(300 * time.Millisecond), Multiplier: 2, Jitter: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range []time.Duration{100, 200, 300, 300} {
		want *= time.Millisecond
		lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
		for range 100 {
			got, ok := cc.backoff(n+1, status.Error(codes.Unavailable, ""))
			if !ok || got < lo || got > hi {
				t.Fatalf("backoff(%d) = %v, %v; want within [%v, %v]", n+1, got, ok, lo, hi)
			}
		}
	}
}

func TestIdempotent(t *testing.T) {
	got := map[string]bool{}
	for _, m := range []string{
		testpbv1.TestService_Echo_FullMethodName,
		testpbv1.TestService_EchoStream_FullMethodName,
		testpbv1.TestService_Put_FullMethodName,
		testpbv1.TestService_Create_FullMethodName,
		"/testpb.v1.TestService/NoSuchMethod",
		"/testpb.v1.Item/key", // a field, not a method
		"/nosuch.Service/Method",
		"garbage",
		"/",
	} {
		got[m] = idempotent(m)
	}
	want := map[string]bool{
		"/testpb.v1.TestService/Echo":         true, // NO_SIDE_EFFECTS
		"/testpb.v1.TestService/EchoStream":   true, // NO_SIDE_EFFECTS
		"/testpb.v1.TestService/Put":          true, // IDEMPOTENT
		"/testpb.v1.TestService/Create":       false,
		"/testpb.v1.TestService/NoSuchMethod": false,
		"/testpb.v1.Item/key":                 false,
		"/nosuch.Service/Method":              false,
		"garbage":                             false,
		"/":                                   false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("idempotent (-want +got):\n%s", diff)
	}
}

func TestParseAttempt(t *testing.T) {
	type result struct {
		N  int
		OK bool
	}
	got := map[string]result{}
	for _, s := range []string{"1", "2", "10", "999", "1000", "0", "-1", "+2", "x", "", " 2", "02"} {
		n, ok := parseAttempt(s)
		got[s] = result{n, ok}
	}
	want := map[string]result{
		"1": {1, true}, "2": {2, true}, "10": {10, true}, "999": {999, true}, "02": {2, true},
		"1000": {}, "0": {}, "-1": {}, "+2": {}, "x": {}, "": {}, " 2": {},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseAttempt (-want +got):\n%s", diff)
	}
}

func FuzzParseAttempt(f *testing.F) {
	for _, s := range []string{"1", "2", "999", "-1", "+3", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseAttempt(s)
		if !ok {
			return
		}
		if n < 1 || n > 999 {
			t.Fatalf("parseAttempt(%q) = %d, out of range", s, n)
		}
		if back, err := strconv.Atoi(s); err != nil || back != n {
			t.Fatalf("parseAttempt(%q) = %d, but strconv.Atoi says %d, %v", s, n, back, err)
		}
	})
}

func TestBudgetFoldsWithoutClockReads(t *testing.T) {
	cfg := DefaultConfig()
	t0 := time.Unix(1e9, 0)
	b := newBudget("t", t0)
	reads := 0
	now := func() time.Time { reads++; return t0 }
	for range 3 * foldEvery {
		b.deposit(&cfg, now)
	}
	if reads != 3 {
		t.Errorf("%d clock reads for %d calls, want 3 (one per fold)", reads, 3*foldEvery)
	}
	b.mu.Lock()
	earned := b.earned
	b.mu.Unlock()
	if want := 3 * foldEvery * cfg.BudgetRatio; math.Abs(earned-want) > 1e-6 {
		t.Errorf("earned %v after the folds, want %v", earned, want)
	}
}
