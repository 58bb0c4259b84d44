package main

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit/internal/figure/figuretest"
)

// TestScenarioChart: a scenario's chart holds its calls and failed calls
// per 250 ms over the load's time and its faults, and is written as SVG.
func TestScenarioChart(t *testing.T) {
	start := time.Now().Add(-2 * time.Second)
	l := &load{start: start, end: start.Add(time.Second)}
	l.slices = []slice{{calls: 100}, {calls: 100, failed: 4}, {calls: 50, failed: 50}, {calls: 100}}
	r := result{name: "kill-9"}
	r.fromLoad(l)
	r.fault(l.start.Add(600*time.Millisecond), "kill -9 user-4")
	charts := r.charts()
	if len(charts) != 1 {
		t.Fatalf("%d charts for a scenario with a load and no attempts observed, want 1", len(charts))
	}
	c := charts[0]
	if c.Name != "chaos-kill-9" || len(c.Series) != 2 || len(c.Series[0].Points) != 4 || len(c.Marks) != 1 {
		t.Fatalf("chart %+v", c)
	}
	if p := c.Series[1].Points[2]; p.Y != 200 || p.X != 0.625 { // 50 failed in 250 ms
		t.Errorf("failed calls/s of the third slice %+v, want 200 at 0.625 s", p)
	}
	if m := c.Marks[0]; m.X < 0.59 || m.X > 0.61 {
		t.Errorf("the fault is marked at %v s, want 0.6", m.X)
	}
	path, err := c.WriteSVG(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "chaos-kill-9.svg" {
		t.Errorf("written as %s", path)
	}
	svg := figuretest.Read(t, path)
	svg.HoldsPoints(t, "calls/s", 4)
	svg.HoldsPoints(t, "failed calls/s", 4)
	svg.Holds(t, "chaos kill-9: calls over time", "calls/s", "failed calls/s", "kill -9 user-4")

	// A load stopped 100 ms into its last slice: that slice's rate is
	// over those 100 ms, drawn at their middle; one stopped 10 ms into
	// it leaves the sliver out.
	l.end = l.start.Add(850 * time.Millisecond)
	c = r.charts()[0]
	if n := len(c.Series[0].Points); n != 4 {
		t.Fatalf("%d points for a load stopped in its fourth slice", n)
	}
	if p := c.Series[0].Points[3]; math.Abs(p.Y-1000) > 1e-9 || math.Abs(p.X-0.8) > 1e-9 {
		t.Errorf("calls/s of the last, partial slice %+v, want 1000 at 0.8 s", p)
	}
	l.end = l.start.Add(760 * time.Millisecond)
	if c = r.charts()[0]; len(c.Series[0].Points) != 3 {
		t.Errorf("%d points for a load stopped 10 ms into its fourth slice, want 3", len(c.Series[0].Points))
	}

	if charts := (result{name: "x"}).charts(); len(charts) != 0 {
		t.Errorf("%d charts for a scenario without a load", len(charts))
	}
}

// TestSharesChart: where a scenario observed the attempts, a second chart
// holds each instance's share of the attempts per 250 ms, by instance
// name, the faults marked; attempts before the load and attempts that
// reached no instance count in no instance's share.
func TestSharesChart(t *testing.T) {
	start := time.Now().Add(-2 * time.Second)
	l := &load{start: start, end: start.Add(500 * time.Millisecond)}
	l.slices = []slice{{calls: 4}, {calls: 4}}
	a, b := &instance{name: "user-1", addr: "127.0.0.1:1"}, &instance{name: "user-2", addr: "127.0.0.1:2"}
	obs := &observer{}
	at := func(d time.Duration, addr string) attempt {
		return attempt{start: start.Add(d), end: start.Add(d + time.Millisecond), addr: addr}
	}
	obs.attempts = []attempt{
		at(-time.Second, a.addr), // before the load: not counted
		at(10*time.Millisecond, a.addr), at(20*time.Millisecond, b.addr), at(30*time.Millisecond, a.addr), at(40*time.Millisecond, a.addr),
		at(260*time.Millisecond, b.addr), at(270*time.Millisecond, b.addr), at(280*time.Millisecond, b.addr),
		{start: start.Add(290 * time.Millisecond), code: codes.Unavailable}, // no connection
	}
	r := result{name: "flapping", attempts: obs, instances: []*instance{a, b}}
	r.fromLoad(l)
	r.fault(start.Add(250*time.Millisecond), "stop")
	charts := r.charts()
	if len(charts) != 2 {
		t.Fatalf("%d charts, want the calls and the shares", len(charts))
	}
	c := charts[1]
	if c.Name != "chaos-flapping-shares" || len(c.Series) != 2 || len(c.Marks) != 1 {
		t.Fatalf("shares chart %+v", c)
	}
	want := map[string][]float64{"user-1": {75, 0}, "user-2": {25, 75}}
	for _, s := range c.Series {
		if len(s.Points) != 2 {
			t.Fatalf("%s: %d points, want 2", s.Name, len(s.Points))
		}
		for i, p := range s.Points {
			if math.Abs(p.Y-want[s.Name][i]) > 1e-9 {
				t.Errorf("%s: share %v%% in slice %d, want %v%%", s.Name, p.Y, i, want[s.Name][i])
			}
		}
	}
	path, err := c.WriteSVG(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svg := figuretest.Read(t, path)
	svg.HoldsPoints(t, "user-1", 2)
	svg.HoldsPoints(t, "user-2", 2)
	svg.Holds(t, "chaos flapping: each instance's share of the attempts", "user-1", "user-2", "stop")
}
