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
// every call for the first second and half of them after; a fault run where
// the faulty backend gets calls (one failing) until 0.2s.
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
	var charts []figdata.Chart
	charts = append(charts, latencyChart("balancer-slow-latency", "latency", []figdata.Series{latencyCDF("round_robin", calls), latencyCDF("kit_weighted", calls[20:])}))
	charts = append(charts, recoveryChart("kit_weighted", sharesOverTime(calls, []string{"slow", "fast"}, backendNames(2, "(late)"), 0, 2*time.Second, 500*time.Millisecond, time.Second)))
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

	// backend-0 served everything for the first second, half after.
	want := []figdata.Point{{X: -1, Y: 100}, {X: -0.5, Y: 100}, {X: 0, Y: 50}, {X: 0.5, Y: 50}}
	if diff := cmp.Diff(want, points("balancer-recovery-kit-weighted", 0)); diff != "" {
		t.Errorf("backend-0's share over time (-want +got):\n%s", diff)
	}
	if c := byName["balancer-recovery-kit-weighted"]; c.Series[0].Name != "backend-0 (late)" || c.Series[1].Name != "backend-1" || len(c.Marks) != 1 {
		t.Errorf("recovery chart: series %q, %q and %d marks; want backend-0 (late), backend-1 and the mark of the recovery", c.Series[0].Name, c.Series[1].Name, len(c.Marks))
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
