package main

import (
	"strings"

	plot "github.com/grpckit/grpckit/internal/figure"
)

// chart returns the scenario's chart: calls/s and failed calls/s over the
// time of its load, the faults marked; false when it ran no load.
func (r result) chart() (plot.Chart, bool) {
	if r.load == nil {
		return plot.Chart{}, false
	}
	perSecond := float64(1e9) / float64(sliceLen)
	calls := plot.Series{Name: "calls/s"}
	failed := plot.Series{Name: "failed calls/s"}
	for i, s := range r.load.timeline() {
		x := (float64(i) + 0.5) * sliceLen.Seconds()
		calls.Points = append(calls.Points, plot.Point{X: x, Y: float64(s.calls) * perSecond})
		failed.Points = append(failed.Points, plot.Point{X: x, Y: float64(s.failed) * perSecond})
	}
	c := plot.Chart{
		Name:   "chaos-" + strings.ToLower(r.name),
		Title:  "chaos " + r.name + ": calls over time",
		X:      plot.Axis{Label: "time since the load started (s)"},
		Y:      plot.Axis{Label: "calls/s (per 250 ms)", Min: plot.Bound(0)},
		Series: []plot.Series{calls, failed},
	}
	for _, m := range r.marks {
		c.Marks = append(c.Marks, plot.Mark{X: m.at.Sub(r.load.start).Seconds(), Label: m.label})
	}
	return c, true
}
