package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/grpckit/grpckit/internal/figure/figuretest"
)

func TestCharts(t *testing.T) {
	lat := func(base time.Duration) latency {
		l := latency{cdf: make([]time.Duration, len(cdfQuantiles))}
		for i := range l.cdf {
			l.cdf[i] = base + time.Duration(i)*time.Microsecond
		}
		return l
	}
	r := results{title: "The cost rule: kit against bare grpc-go (EmptyCall)", base: "bare grpc-go (the base)", rows: []rowResult{
		{name: "bare grpc-go (the base)", seq: lat(50 * time.Microsecond), loaded: lat(time.Millisecond), seqP50: 1, p50: 1, rate: 1, cpu: 1},
		{name: "kit default chains (metrics on)", seq: lat(55 * time.Microsecond), loaded: lat(time.Millisecond), seqP50: 1.08, p50: 0.95, rate: 0.98, cpu: 1.04},
	}}
	dir := t.TempDir()
	charts := r.charts("cost")
	if err := writeCharts(dir, charts); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		file  string
		texts []string
	}{
		{"bench-cost-latency-1.svg", []string{"Latency at 1 in flight: The cost rule: kit against bare grpc-go", "latency (µs, log scale)", "calls at or below (%)", "bare grpc-go", "kit default chains"}},
		{"bench-cost-latency-64.svg", []string{"Latency at 64 in flight: The cost rule: kit against bare grpc-go", "bare grpc-go", "kit default chains"}},
		{"bench-cost-ratios.svg", []string{"Cost against bare grpc-go (1.00x: the same)", "ratio to the base (x)", "bare grpc-go", "kit default chains",
			"p50, 1 in flight", "p50, 64 in flight", "calls/s, 64 in flight", "CPU per call, 64 in flight"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s := figuretest.Read(t, filepath.Join(dir, tc.file))
			s.Holds(t, tc.texts...)
			// Every series drawn, with a point per quantile or a bar per
			// row.
			c := charts[i]
			for _, ser := range c.Series {
				n := len(cdfQuantiles)
				if c.Categories != nil {
					n = len(r.rows)
				}
				s.HoldsPoints(t, ser.Name, n)
			}
		})
	}
	// Each latency line has a point per quantile.
	if n := len(charts[0].Series[1].Points); n != len(cdfQuantiles) {
		t.Errorf("%d points in kit's distribution, want %d", n, len(cdfQuantiles))
	}
	if got := charts[2].Series[0].Values; len(got) != 2 || got[1] != 1.08 {
		t.Errorf("p50 ratios %v, want [1 1.08]", got)
	}
}

func TestSummarizeCDF(t *testing.T) {
	var per [][]time.Duration
	for g := range 4 {
		var l []time.Duration
		for i := range 250 {
			l = append(l, time.Duration(4*i+g+1)*time.Microsecond)
		}
		per = append(per, l)
	}
	l := summarize(per) // 1µs to 1000µs, once each
	for i, q := range cdfQuantiles {
		want := time.Duration(q*10+1) * time.Microsecond
		if l.cdf[i] != want {
			t.Errorf("%v%%: %v, want %v", q, l.cdf[i], want)
		}
	}
}
