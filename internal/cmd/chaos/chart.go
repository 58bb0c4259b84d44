package main

import (
	"strings"
	"time"

	plot "github.com/grpckit/grpckit/internal/figure"
)

// charts returns the scenario's charts: calls/s and failed calls/s over
// the time of its load, and, where it observed the attempts, each
// instance's share of them; the faults marked. None when it ran no load.
func (r result) charts() []plot.Chart {
	if r.load == nil {
		return nil
	}
	calls := plot.Series{Name: "calls/s"}
	failed := plot.Series{Name: "failed calls/s"}
	timeline := r.load.timeline()
	r.overSlices(len(timeline), func(i int, x, seconds float64) {
		s := timeline[i]
		calls.Points = append(calls.Points, plot.Point{X: x, Y: float64(s.calls) / seconds})
		failed.Points = append(failed.Points, plot.Point{X: x, Y: float64(s.failed) / seconds})
	})
	out := []plot.Chart{{
		Name:   "chaos-" + strings.ToLower(r.name),
		Title:  "chaos " + r.name + ": calls over time",
		X:      plot.Axis{Label: "time since the load started (s)"},
		Y:      plot.Axis{Label: "calls/s (per 250 ms)", Min: plot.Bound(0)},
		Series: []plot.Series{calls, failed},
		Marks:  r.chartMarks(),
	}}
	if r.attempts != nil && len(r.instances) > 0 {
		out = append(out, r.sharesChart())
	}
	return out
}

// sharesChart draws each instance's share of the attempts that started in
// each slice of the load (an attempt that reached no instance counts in
// none, so the shares of a slice may add up to less than 100%).
func (r result) sharesChart() plot.Chart {
	byAddr := make(map[string]int, len(r.instances))
	series := make([]plot.Series, len(r.instances))
	for i, inst := range r.instances {
		byAddr[inst.addr] = i
		series[i].Name = inst.name
	}
	var counts [][]int // per slice, per instance
	var totals []int   // per slice
	for _, a := range r.attempts.since(r.load.start) {
		i := int(a.start.Sub(r.load.start) / sliceLen)
		for len(totals) <= i {
			counts, totals = append(counts, make([]int, len(r.instances))), append(totals, 0)
		}
		totals[i]++
		if k, ok := byAddr[a.addr]; ok {
			counts[i][k]++
		}
	}
	r.overSlices(len(r.load.timeline()), func(i int, x, _ float64) {
		if i >= len(totals) || totals[i] == 0 {
			return
		}
		for k := range series {
			series[k].Points = append(series[k].Points, plot.Point{X: x, Y: 100 * float64(counts[i][k]) / float64(totals[i])})
		}
	})
	return plot.Chart{
		Name:   "chaos-" + strings.ToLower(r.name) + "-shares",
		Title:  "chaos " + r.name + ": each instance's share of the attempts",
		X:      plot.Axis{Label: "time since the load started (s)"},
		Y:      plot.Axis{Label: "share of attempts (%, per 250 ms)", Min: plot.Bound(0), Max: plot.Bound(100)},
		Series: series,
		Marks:  r.chartMarks(),
	}
}

// overSlices calls f for each of the first n slices of the load's time
// with its index, the middle of the time it covers and its length in
// seconds. The last slice ends with the load: it covers the part that ran
// (a sliver is left out rather than drawn as a fall).
func (r result) overSlices(n int, f func(i int, x, seconds float64)) {
	ran := r.load.duration()
	for i := range n {
		from := time.Duration(i) * sliceLen
		width := min(sliceLen, ran-from)
		if width < sliceLen/10 {
			return
		}
		f(i, (from + width/2).Seconds(), width.Seconds())
	}
}

func (r result) chartMarks() []plot.Mark {
	var marks []plot.Mark
	for _, m := range r.marks {
		marks = append(marks, plot.Mark{X: m.at.Sub(r.load.start).Seconds(), Label: m.label})
	}
	return marks
}
