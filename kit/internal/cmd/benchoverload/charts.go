package main

import (
	"fmt"
	"time"

	"github.com/grpckit/grpckit/kit/internal/figdata"
	sim "github.com/grpckit/grpckit/kit/internal/overloadsim"
)

// The charts of the scenarios, written as JSON (kit/internal/figdata) for
// internal/cmd/figures to draw; the file names are the charts' names.

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// levelCharts draws goodput and the p99 of OK calls against the offered
// load, one line per kind; res holds each kind's summaries in the order of
// multiples, capacity is the measured capacity.
func levelCharts(multiples []float64, res map[sim.Kind][]sim.Summary, capacity float64) []figdata.Chart {
	offered := figdata.Axis{Label: "offered load (calls/s)", Min: figdata.Bound(0)}
	goodput := figdata.Chart{
		Name: "overload-goodput", Title: "Goodput against offered load (one server of fixed capacity)",
		X: offered, Y: figdata.Axis{Label: "goodput: OK calls/s", Min: figdata.Bound(0)},
	}
	p99 := figdata.Chart{
		Name: "overload-p99", Title: "p99 latency of OK calls against offered load",
		X: offered, Y: figdata.Axis{Label: "p99 of OK calls (ms)", Min: figdata.Bound(0)},
	}
	for _, k := range sim.Kinds {
		g, l := figdata.Series{Name: k.String()}, figdata.Series{Name: k.String()}
		for i, s := range res[k] {
			x := multiples[i] * sim.Capacity
			g.Points = append(g.Points, figdata.Point{X: x, Y: s.Goodput})
			l.Points = append(l.Points, figdata.Point{X: x, Y: msOf(s.P99)})
		}
		goodput.Series, p99.Series = append(goodput.Series, g), append(p99.Series, l)
	}
	last := multiples[len(multiples)-1] * sim.Capacity
	goodput.Series = append(goodput.Series, figdata.Series{Name: "capacity measured on this machine",
		Points: []figdata.Point{{X: 0, Y: capacity}, {X: last, Y: capacity}}})
	return []figdata.Chart{goodput, p99}
}

// timelineSeries is one kind's goodput over a timeline.
func timelineSeries(name string, points []sim.Point) figdata.Series {
	s := figdata.Series{Name: name}
	for _, p := range points {
		s.Points = append(s.Points, figdata.Point{X: p.At.Seconds(), Y: p.Summary.Goodput})
	}
	return s
}

// halvingChart draws goodput over time around the halving of capacity at
// halvedAt.
func halvingChart(bare, now []sim.Point, halvedAt time.Duration) figdata.Chart {
	return figdata.Chart{
		Name: "overload-halving", Title: "Capacity halves under 2x load: goodput over time",
		X: figdata.Axis{Label: "time (s)"}, Y: figdata.Axis{Label: "goodput: OK calls/s", Min: figdata.Bound(0)},
		Series: []figdata.Series{timelineSeries(sim.Bare.String(), bare), timelineSeries(sim.New.String(), now)},
		Marks:  []figdata.Mark{{X: halvedAt.Seconds(), Label: "capacity halves"}},
	}
}

// spikeChart draws goodput over time through the spike, one line per kind
// in res's order, with the offered load.
func spikeChart(kinds []sim.Kind, res []sim.SpikeResult, phase time.Duration, rate func(time.Duration) float64) figdata.Chart {
	c := figdata.Chart{
		Name: "overload-spike", Title: "A 3x spike: goodput over time",
		X: figdata.Axis{Label: "time (s)"}, Y: figdata.Axis{Label: "calls/s", Min: figdata.Bound(0)},
		Marks: []figdata.Mark{{X: phase.Seconds(), Label: "spike starts"}, {X: (2 * phase).Seconds(), Label: "spike ends"}},
	}
	offered := figdata.Series{Name: "offered"}
	for at := time.Duration(0); at < 3*phase; at += sim.SpikeStep {
		offered.Points = append(offered.Points, figdata.Point{X: at.Seconds(), Y: rate(at)})
	}
	c.Series = append(c.Series, offered)
	for i, k := range kinds {
		c.Series = append(c.Series, timelineSeries(fmt.Sprintf("%s: OK calls/s", k), res[i].Timeline))
	}
	return c
}

// threeChart draws the OK calls each backend answered, one bar per kind.
func threeChart(kinds []sim.Kind, spreads []sim.Spread) figdata.Chart {
	c := figdata.Chart{
		Name: "overload-three-backends", Title: "Three backends, one overloaded (backend-0): OK calls each answered",
		X: figdata.Axis{Label: "OK calls"},
	}
	for i := range spreads[0].OK {
		c.Categories = append(c.Categories, fmt.Sprintf("backend-%d", i))
	}
	for i, k := range kinds {
		s := figdata.Series{Name: k.String()}
		for _, n := range spreads[i].OK {
			s.Values = append(s.Values, float64(n))
		}
		c.Series = append(c.Series, s)
	}
	return c
}
