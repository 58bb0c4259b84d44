package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/grpckit/grpckit/internal/figure"
)

// results are one table's figures, for its charts.
type results struct {
	title string
	base  string // the first row's name
	rows  []rowResult
}

// rowResult is one row of a table.
type rowResult struct {
	name        string
	seq, loaded latency // 1 in flight (the median round), 64 in flight
	// Ratios to the base: p50 at 1 and at 64 in flight, calls/s and CPU
	// per call at 64 in flight.
	seqP50, p50, rate, cpu float64
}

// label shortens a row's name for a legend: what is in parentheses goes.
func label(name string) string {
	if i := strings.Index(name, " ("); i > 0 {
		return name[:i]
	}
	return name
}

// charts are the table's charts, named bench-KEY-...: the latency
// distribution of every row at 1 and at 64 in flight, and the ratios to
// the base.
func (r results) charts(key string) []figure.Chart {
	cdf := func(inFlight int, of func(rowResult) latency) figure.Chart {
		c := figure.Chart{
			Name:  fmt.Sprintf("bench-%s-latency-%d", key, inFlight),
			Title: fmt.Sprintf("Latency at %d in flight: %s", inFlight, label(r.title)),
			X:     figure.Axis{Label: "latency (µs, log scale)", Log: true},
			Y:     figure.Axis{Label: "calls at or below (%)", Min: figure.Bound(0), Max: figure.Bound(100)},
		}
		for _, row := range r.rows {
			s := figure.Series{Name: label(row.name)}
			for i, d := range of(row).cdf {
				s.Points = append(s.Points, figure.Point{X: max(float64(d)/float64(time.Microsecond), 0.01), Y: cdfQuantiles[i]})
			}
			c.Series = append(c.Series, s)
		}
		return c
	}
	ratios := figure.Chart{
		Name:   fmt.Sprintf("bench-%s-ratios", key),
		Title:  "Cost against " + label(r.base) + " (1.00x: the same)",
		X:      figure.Axis{Label: "ratio to the base (x)", Min: figure.Bound(0)},
		Series: []figure.Series{{Name: "p50, 1 in flight"}, {Name: "p50, 64 in flight"}, {Name: "calls/s, 64 in flight"}, {Name: "CPU per call, 64 in flight"}},
	}
	for _, row := range r.rows {
		ratios.Categories = append(ratios.Categories, label(row.name))
		for i, v := range []float64{row.seqP50, row.p50, row.rate, row.cpu} {
			ratios.Series[i].Values = append(ratios.Series[i].Values, v)
		}
	}
	return []figure.Chart{
		cdf(1, func(r rowResult) latency { return r.seq }),
		cdf(64, func(r rowResult) latency { return r.loaded }),
		ratios,
	}
}

// writeCharts draws charts into dir.
func writeCharts(dir string, charts []figure.Chart) error {
	for _, c := range charts {
		if _, err := c.WriteSVG(dir); err != nil {
			return err
		}
	}
	return nil
}
