package main

import (
	"strings"
	"time"

	plot "github.com/grpckit/grpckit/internal/figure"
)

// chart returns the scenario's chart: calls/s and failed calls/s over the
// time of its load, the faults marked; false when it ran no load.
func (r result) chart() (plot.Chart, bool) {
	if r.load == nil {
		return plot.Chart{}, false
	}
	calls := plot.Series{Name: "calls/s"}
	failed := plot.Series{Name: "failed calls/s"}
	ran := r.load.duration()
	for i, s := range r.load.timeline() {
		// The last slice ends with the load: its rate is over the part
		// that ran (a sliver is left out rather than drawn as a fall).
		from := time.Duration(i) * sliceLen
		width := min(sliceLen, ran-from)
		if width < sliceLen/10 {
			break
		}
		x := (from + width/2).Seconds()
		calls.Points = append(calls.Points, plot.Point{X: x, Y: float64(s.calls) / width.Seconds()})
		failed.Points = append(failed.Points, plot.Point{X: x, Y: float64(s.failed) / width.Seconds()})
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
