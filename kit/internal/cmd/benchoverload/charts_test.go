package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/internal/figdata"
	sim "github.com/grpckit/grpckit/kit/internal/overloadsim"
)

var update = flag.Bool("update", false, "rewrite testdata/charts.json")

// knownCharts are the charts of made-up results of every scenario.
func knownCharts() []figdata.Chart {
	multiples := []float64{0.5, 1, 3}
	res := map[sim.Kind][]sim.Summary{}
	for _, k := range sim.Kinds {
		for i, m := range multiples {
			res[k] = append(res[k], sim.Summary{Goodput: min(m, 1) * 800 * (1 - 0.1*float64(k)), P99: time.Duration(i+1+int(k)) * 10 * time.Millisecond})
		}
	}
	timeline := func(goodput ...float64) []sim.Point {
		var out []sim.Point
		for i, g := range goodput {
			out = append(out, sim.Point{At: time.Duration(i) * sim.SpikeStep, Summary: sim.Summary{Goodput: g}})
		}
		return out
	}
	const phase = 2 * sim.SpikeStep
	var spikes []sim.SpikeResult
	for range sim.Kinds {
		spikes = append(spikes, sim.SpikeResult{Timeline: timeline(400, 400, 780, 790, 400, 400)})
	}
	var spreads []sim.Spread
	for k := range sim.Kinds {
		spreads = append(spreads, sim.Spread{OK: []int{100 * (k + 1), 700, 700}})
	}
	var charts []figdata.Chart
	charts = append(charts, levelCharts(multiples, res, 790)...)
	charts = append(charts, halvingChart(timeline(1600, 800, 400, 380), timeline(800, 790, 400, 390), 2*sim.SpikeStep))
	charts = append(charts, threeChart(sim.Kinds, spreads))
	charts = append(charts, spikeChart(sim.Kinds, spikes, phase, sim.SpikeRate(phase)))
	return charts
}

func TestCharts(t *testing.T) {
	charts := knownCharts()
	byName := map[string]figdata.Chart{}
	for _, c := range charts {
		byName[c.Name] = c
	}
	names := func(c figdata.Chart) (out []string) {
		for _, s := range c.Series {
			out = append(out, s.Name)
		}
		return out
	}
	kinds := []string{"bare grpc-go", "kit before", "kit now"}
	for _, tc := range []struct {
		name   string
		series []string
		points int // of the first series
		marks  int
	}{
		{"overload-goodput", append(kinds, "capacity measured on this machine"), 3, 0},
		{"overload-p99", kinds, 3, 0},
		{"overload-halving", []string{"bare grpc-go", "kit now"}, 4, 1},
		{"overload-three-backends", kinds, 0, 0},
		{"overload-spike", []string{"offered", "bare grpc-go: OK calls/s", "kit before: OK calls/s", "kit now: OK calls/s"}, 6, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := byName[tc.name]
			if !ok {
				t.Fatalf("no chart %q", tc.name)
			}
			if diff := cmp.Diff(tc.series, names(c)); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
			if got := len(c.Series[0].Points); got != tc.points {
				t.Errorf("%d points in the first series, want %d", got, tc.points)
			}
			if len(c.Marks) != tc.marks {
				t.Errorf("%d marks, want %d", len(c.Marks), tc.marks)
			}
		})
	}
	if got := byName["overload-goodput"].Series[2].Points[2]; got.X != 3*sim.Capacity || got.Y != 0.8*800 {
		t.Errorf("kit now at 3x: point %+v, want x = 3x the nominal capacity, y = its goodput", got)
	}
	if got := byName["overload-three-backends"].Series[0].Values; !cmp.Equal(got, []float64{100, 700, 700}) {
		t.Errorf("bare grpc-go's bars %v, want the OK calls of each backend", got)
	}
}

// TestGolden keeps testdata/charts.json, which internal/cmd/figures (root
// module) draws in its tests, equal to what this command writes for the
// known results.
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
