package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/internal/figdata"
)

var update = flag.Bool("update", false, "rewrite testdata/charts.json")

// knownCharts are the charts of made-up calls: two backends, "slow" taking
// every call for the first second and half of them after, none after 2s; a
// slow-instance run over its 4s where "slow" takes every call of the
// warm-up and one in four after, none in 2s to 2.25s; a fault run where the
// faulty backend gets calls (one failing) until 0.2s, the kit_weighted run
// none after 0.1s.
func knownCharts() []figdata.Chart {
	var calls []call
	for i := range 40 {
		at := time.Duration(i) * 50 * time.Millisecond
		server := "slow"
		if at >= time.Second && i%2 == 1 {
			server = "fast"
		}
		calls = append(calls, call{start: at, latency: time.Duration(i+1) * time.Millisecond, server: server})
	}
	var recs []record
	for i := range 10 {
		at := time.Duration(i-2) * 50 * time.Millisecond
		r := record{start: at, peer: "fast"}
		if at < 200*time.Millisecond {
			r.peer = "bad"
		}
		if i == 3 {
			r = record{start: at, err: errors.New("unavailable")}
		}
		recs = append(recs, r)
	}
	var slowRun []call
	for i := range 40 {
		at := time.Duration(i) * 100 * time.Millisecond
		if at >= 2*time.Second && at < 2*time.Second+slowStep {
			continue
		}
		server := "slow"
		if at >= warmUp && i%4 != 0 {
			server = "fast"
		}
		slowRun = append(slowRun, call{start: at, latency: time.Millisecond, server: server})
	}
	var charts []figdata.Chart
	charts = append(charts, slowSharesChart("kit_weighted", slowRun, []string{"slow", "fast"}))
	charts = append(charts, latencyChart("balancer-slow-latency", "latency", []figdata.Series{latencyCDF("round_robin", calls), latencyCDF("kit_weighted", calls[20:])}))
	charts = append(charts, recoveryChart("kit_weighted", sharesOverTime(calls, []string{"slow", "fast"}, backendNames(2, "(late)"), 0, 3*time.Second, 500*time.Millisecond, time.Second)))
	charts = append(charts, faultCharts("1 of 5 answers UNAVAILABLE", []faultRun{
		{policy: "round_robin", recs: recs, bad: "bad", end: 300 * time.Millisecond},
		{policy: "kit_weighted", recs: recs[:5], bad: "bad", end: 300 * time.Millisecond},
	})...)
	return charts
}

func TestCharts(t *testing.T) {
	charts := knownCharts()
	byName := map[string]figdata.Chart{}
	for _, c := range charts {
		byName[c.Name] = c
	}
	points := func(name string, series int) []figdata.Point {
		t.Helper()
		c, ok := byName[name]
		if !ok {
			t.Fatalf("no chart %q among %d", name, len(charts))
		}
		return c.Series[series].Points
	}

	cdf := points("balancer-slow-latency", 0)
	if len(cdf) != len(cdfQuantiles) || cdf[0].Y != 1 || cdf[len(cdf)-1].Y != 99.9 {
		t.Errorf("latency CDF %v: want one point per quantile, 1%% to 99.9%%", cdf)
	}
	if got := cdf[6]; got.Y != 50 || got.X != 21 {
		t.Errorf("median point %+v, want 21 ms at 50%%", got)
	}

	// backend-0 served everything for the first second, half after; no
	// calls after 2s: no points (not a share of 0).
	want := []figdata.Point{{X: -1, Y: 100}, {X: -0.5, Y: 100}, {X: 0, Y: 50}, {X: 0.5, Y: 50}}
	if diff := cmp.Diff(want, points("balancer-recovery-kit-weighted", 0)); diff != "" {
		t.Errorf("backend-0's share over time (-want +got):\n%s", diff)
	}
	if c := byName["balancer-recovery-kit-weighted"]; c.Series[0].Name != "backend-0 (late)" || c.Series[1].Name != "backend-1" || len(c.Marks) != 1 {
		t.Errorf("recovery chart: series %q, %q and %d marks; want backend-0 (late), backend-1 and the mark of the recovery", c.Series[0].Name, c.Series[1].Name, len(c.Marks))
	}

	// The slow-instance run: a slice per 250ms of the 4s, but for the one
	// without calls; the slow backend takes every call of the warm-up and
	// one in four after (at most one of the 2 or 3 calls of a slice).
	slow := byName["balancer-slow-shares-kit-weighted"]
	if len(slow.Series) != 2 || slow.Series[0].Name != "backend-0 (40 ms late)" || slow.Series[1].Name != "backend-1" {
		t.Fatalf("slow-instance shares: series %+v, want backend-0 (40 ms late) and backend-1", slow.Series)
	}
	if diff := cmp.Diff([]figdata.Mark{{X: warmUp.Seconds(), Label: "measured from here"}}, slow.Marks); diff != "" {
		t.Errorf("slow-instance shares: marks (-want +got):\n%s", diff)
	}
	slowShares := points("balancer-slow-shares-kit-weighted", 0)
	if len(slowShares) != 15 {
		t.Fatalf("%d slices of the slow backend's share, want 15 (16 slices of 250ms, one without calls): %v", len(slowShares), slowShares)
	}
	for i, p := range slowShares {
		at := time.Duration(p.X * float64(time.Second))
		if at == 2*time.Second {
			t.Errorf("a point at 2s, in the slice without calls: %v", p)
		}
		if at < warmUp && p.Y != 100 {
			t.Errorf("slow backend's share at %v (warm-up) = %v%%, want 100%%", at, p.Y)
		}
		if at >= warmUp && p.Y > 50 {
			t.Errorf("slow backend's share at %v = %v%%, want one call in four (at most half of a slice)", at, p.Y)
		}
		if other := points("balancer-slow-shares-kit-weighted", 1)[i]; other.X != p.X || other.Y+p.Y != 100 {
			t.Errorf("backend-1's point %v beside backend-0's %v: the shares of a slice add to 100%%", other, p)
		}
	}

	share := points("balancer-fault-1-of-5-answers-unavailable-share", 0)
	// Slices of 100ms from the fault: the faulty backend (or a failure)
	// gets every call until 0.2s, none after.
	wantShare := []float64{100, 100, 0}
	if len(share) != len(wantShare) {
		t.Fatalf("%d slices of the faulty backend's share, want %d: %v", len(share), len(wantShare), share)
	}
	for i, p := range share {
		if p.Y != wantShare[i] {
			t.Errorf("share at %.1fs = %.0f%%, want %.0f%%", p.X, p.Y, wantShare[i])
		}
	}
	// kit_weighted's run has no calls from 0.2s: no share there, but 0
	// failed calls/s.
	if got := points("balancer-fault-1-of-5-answers-unavailable-share", 1); len(got) != 2 {
		t.Errorf("kit_weighted's share %v: want the 2 slices with calls only", got)
	}
	if got := points("balancer-fault-1-of-5-answers-unavailable-failed", 1); len(got) != 3 || got[2].Y != 0 {
		t.Errorf("kit_weighted's failed calls %v: want 3 slices, 0 in the last", got)
	}
	var failures float64
	for _, p := range points("balancer-fault-1-of-5-answers-unavailable-failed", 0) {
		failures += p.Y * faultStep.Seconds()
	}
	if failures != 1 {
		t.Errorf("%v failed calls over the failed-calls chart, want 1", failures)
	}
}

// TestGolden keeps testdata/charts.json, which internal/cmd/figures (root
// module) draws in its tests, equal to what this command writes for the
// known calls.
func TestGolden(t *testing.T) {
	golden := filepath.Join("testdata", "charts.json")
	if *update {
		if err := figdata.Write(golden, knownCharts()); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "charts.json")
	if err := figdata.Write(path, knownCharts()); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("charts differ from %s (-golden +now); run with -update after a change on purpose:\n%s", golden, diff)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"1 of 5 fails 10% of calls":         "1-of-5-fails-10-of-calls",
		"1 of 5 black hole, 200ms deadline": "1-of-5-black-hole-200ms-deadline",
		"kit_weighted":                      "kit-weighted",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}
