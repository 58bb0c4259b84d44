package figdata

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/charts.json")

// sample uses every field of the format.
var sample = []Chart{
	{
		Name: "spike-over-time", Title: "Spike: goodput over time",
		X: Axis{Label: "time (s)", Min: Bound(0)}, Y: Axis{Label: "goodput (calls/s)", Min: Bound(0), Max: Bound(2000)},
		Series: []Series{
			{Name: "bare grpc-go", Points: []Point{{0, 400}, {0.5, 410}, {1, 395.5}}},
			{Name: "kit now", Points: []Point{{0, 401}, {0.5, 790}, {1, 402}}},
		},
		Marks: []Mark{{X: 0.5, Label: "spike starts"}},
	},
	{
		Name: "latency-cdf", Title: "Latency", X: Axis{Label: "latency (ms)", Log: true}, Y: Axis{Label: "calls at or below (%)"},
		Series: []Series{{Name: "round_robin", Points: []Point{{0.2, 50}, {41, 99}}}},
	},
	{
		Name: "three-backends", Title: "OK calls per backend", X: Axis{Label: "OK calls"},
		Categories: []string{"backend-0", "backend-1"},
		Series:     []Series{{Name: "kit now", Values: []float64{120, 700}}},
	},
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "charts.json")
	if err := Write(path, sample); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample, got); diff != "" {
		t.Errorf("read back (-wrote +read):\n%s", diff)
	}
}

// TestGolden pins the format: internal/cmd/figures (root module) decodes
// the same file into internal/figure's charts.
func TestGolden(t *testing.T) {
	golden := filepath.Join("testdata", "charts.json")
	if *update {
		if err := Write(golden, sample); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "charts.json")
	if err := Write(path, sample); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("Write no longer writes %s (-golden +now); if the format changed on purpose, change internal/figure too and run with -update:\n%s", golden, diff)
	}
}

func TestReadRejectsOtherJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(path, []byte(`{"name": "not an array"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("Read of an object, not an array of charts: no error")
	}
}
