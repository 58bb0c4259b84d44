package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	c, ok := r.chart()
	if !ok {
		t.Fatal("no chart for a scenario with a load")
	}
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
	for _, want := range []string{"chaos kill-9: calls over time", "calls/s", "failed calls/s", "kill -9 user-4"} {
		if !strings.Contains(strings.Join(svg.Texts, "\n"), want) {
			t.Errorf("the SVG lacks %q: %q", want, svg.Texts)
		}
	}

	// A load stopped 100 ms into its last slice: that slice's rate is
	// over those 100 ms, drawn at their middle; one stopped 10 ms into
	// it leaves the sliver out.
	l.end = l.start.Add(850 * time.Millisecond)
	c, _ = r.chart()
	if n := len(c.Series[0].Points); n != 4 {
		t.Fatalf("%d points for a load stopped in its fourth slice", n)
	}
	if p := c.Series[0].Points[3]; math.Abs(p.Y-1000) > 1e-9 || math.Abs(p.X-0.8) > 1e-9 {
		t.Errorf("calls/s of the last, partial slice %+v, want 1000 at 0.8 s", p)
	}
	l.end = l.start.Add(760 * time.Millisecond)
	if c, _ = r.chart(); len(c.Series[0].Points) != 3 {
		t.Errorf("%d points for a load stopped 10 ms into its fourth slice, want 3", len(c.Series[0].Points))
	}

	if _, ok := (result{name: "x"}).chart(); ok {
		t.Error("a chart for a scenario without a load")
	}
}
