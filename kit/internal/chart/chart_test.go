package chart

import (
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var nan = math.NaN()

// times returns n sample times a second apart.
func times(n int) []int64 {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local).UnixMilli()
	out := make([]int64, n)
	for i := range out {
		out[i] = start + int64(i)*1000
	}
	return out
}

// The lines read back from the SVG are the values drawn, to a tenth of a
// pixel, with gaps left out and a lone value kept as a dot.
func TestLinesReadBack(t *testing.T) {
	ts := times(6)
	c := Chart{ID: "calls", Title: `calls/s <per> "endpoint" & more`, Unit: "calls/s", Times: ts, Lines: []Line{
		{Key: "10.0.0.1:80", Values: []float64{1, 2, 3, 4, 5, 6}},
		{Key: "10.0.0.2:80", Values: []float64{nan, 7, nan, 3, 3, nan}},
	}}
	svg := c.SVG()
	d, err := Read(svg)
	if err != nil {
		t.Fatalf("%v\n%s", err, svg)
	}
	want := map[string][]Point{
		"10.0.0.1:80": {{ts[0], 1}, {ts[1], 2}, {ts[2], 3}, {ts[3], 4}, {ts[4], 5}, {ts[5], 6}},
		"10.0.0.2:80": {{ts[1], 7}, {ts[3], 3}, {ts[4], 3}},
	}
	// The y axis tops at 8: a pixel is 8/110 of a unit; a time is exact to
	// 5000/576 ms per pixel, a tenth of it drawn.
	opt := cmp.Comparer(func(a, b Point) bool {
		return math.Abs(float64(a.Time-b.Time)) <= 1 && math.Abs(a.Value-b.Value) < 0.01
	})
	if diff := cmp.Diff(want, d.Lines, opt); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if d.ID != "calls" || d.Title != c.Title {
		t.Errorf("id %q, title %q", d.ID, d.Title)
	}
	if !strings.Contains(svg, `data-v1="8"`) {
		t.Errorf("the y axis does not top at 8: %s", svg)
	}
	if !strings.Contains(svg, ">03:04:05<") || !strings.Contains(svg, ">calls/s<") {
		t.Errorf("no time tick label or unit: %s", svg)
	}
}

func TestMarksAndBands(t *testing.T) {
	ts := times(5)
	c := Chart{ID: "breakers", Times: ts, From: ts[0] - 60_000, Bands: []Band{
		{Key: "/greeter.v1.GreeterService/SayHello", States: []string{"", "closed", "open", "open", "half-open"}},
	}, Marks: []Mark{
		{Time: ts[2], Event: "ejection", Key: "e1", Title: "e1 ejected"},
		{Time: ts[0] - 120_000, Event: "panic", Title: "before the axis: not drawn"},
	}}
	d, err := Read(c.SVG())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"/greeter.v1.GreeterService/SayHello": {"closed", "open", "half-open"}}, d.Bands); diff != "" {
		t.Errorf("bands (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Mark{{Time: ts[2], Event: "ejection", Key: "e1", Title: "e1 ejected"}}, d.Marks); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
}

// Any chart is well-formed XML, even empty, all gaps or one value.
func TestDegenerateChartsAreWellFormed(t *testing.T) {
	for name, c := range map[string]Chart{
		"empty":    {},
		"all gaps": {Times: times(3), Lines: []Line{{Key: "a", Values: []float64{nan, nan, nan}}}},
		"one":      {Times: times(1), Lines: []Line{{Key: "a", Values: []float64{0}}}},
		"long keys": {Times: times(2), Lines: []Line{
			{Key: strings.Repeat("x", 200), Values: []float64{1, 2}}, {Key: "<&>", Values: []float64{math.Inf(1), 1}},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			svg := c.SVG()
			if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
				t.Fatalf("%v\n%s", err, svg)
			}
			if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
				t.Errorf("a coordinate is not a number: %s", svg)
			}
		})
	}
	d, err := Read(Chart{Times: times(1), Lines: []Line{{Key: "a", Values: []float64{0}}}}.SVG())
	if err != nil || len(d.Lines["a"]) != 1 {
		t.Errorf("a lone value: %v, %v", d.Lines, err)
	}
}

func TestNiceCeilAndTimeStep(t *testing.T) {
	got := []float64{niceCeil(0), niceCeil(0.3), niceCeil(3), niceCeil(4.5), niceCeil(9), niceCeil(1234)}
	if diff := cmp.Diff([]float64{1, 0.4, 4, 8, 10, 2000}, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("niceCeil (-want +got):\n%s", diff)
	}
	if s := timeStep(5 * time.Minute); s != time.Minute {
		t.Errorf("timeStep(5m) = %v, want 1m", s)
	}
}

// Values at times outside the time axis (a wall clock set back, a sample
// past To) are gaps: no point is drawn outside the plot, and no band has a
// negative width.
func TestNothingDrawnOutsideTheAxis(t *testing.T) {
	ts := times(6)
	ts[2] = ts[0] - 3_600_000 // the clock went back an hour
	ts[5] = ts[4] + 3_600_000 // and forward
	c := Chart{ID: "calls", Times: ts, From: ts[0], To: ts[4], Lines: []Line{
		{Key: "a", Values: []float64{1, 2, 3, 4, 5, 6}},
	}, Bands: nil}
	svg := c.SVG()
	d, err := Read(svg)
	if err != nil {
		t.Fatalf("%v\n%s", err, svg)
	}
	var got []int64
	for _, p := range d.Lines["a"] {
		got = append(got, p.Time)
	}
	opt := cmp.Comparer(func(a, b int64) bool { return math.Abs(float64(a-b)) <= 1 })
	if diff := cmp.Diff([]int64{ts[0], ts[1], ts[3], ts[4]}, got, opt); diff != "" {
		t.Errorf("times drawn (-want +got):\n%s\n%s", diff, svg)
	}

	b := Chart{ID: "breakers", Times: ts, From: ts[0], To: ts[4], Bands: []Band{
		{Key: "m", States: []string{"closed", "closed", "open", "closed", "closed", "half-open"}},
	}}.SVG()
	if strings.Contains(b, `width="-`) {
		t.Errorf("a band of negative width: %s", b)
	}
	bd, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"m": {"closed", "closed"}}, bd.Bands); diff != "" {
		t.Errorf("bands (-want +got):\n%s\n%s", diff, b)
	}
}

// Past eight lines the colors repeat, dashed then dotted: no two lines of
// a chart (up to 24) have the same classes, in the plot and the legend.
func TestLinesPastEightAreDashed(t *testing.T) {
	c := Chart{Times: times(2)}
	for i := range 24 {
		c.Lines = append(c.Lines, Line{Key: strconv.Itoa(i), Values: []float64{1, 2}})
	}
	svg := c.SVG()
	var e struct {
		Paths []struct {
			Class string `xml:"class,attr"`
		} `xml:"path"`
		Swatches []struct {
			Class string `xml:"class,attr"`
		} `xml:"line"`
	}
	if err := xml.Unmarshal([]byte(svg), &e); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range e.Paths {
		if seen[p.Class] {
			t.Errorf("two lines of class %q", p.Class)
		}
		seen[p.Class] = true
	}
	if len(seen) != 24 || !seen["line c0 d0"] || !seen["line c0 d1"] || !seen["line c7 d2"] {
		t.Errorf("line classes %v", seen)
	}
	swatches := 0
	for _, s := range e.Swatches {
		if strings.HasPrefix(s.Class, "swatch line ") {
			swatches++
			if !seen[strings.TrimPrefix(s.Class, "swatch ")] {
				t.Errorf("a swatch of class %q, no line has it", s.Class)
			}
		}
	}
	if swatches != 24 {
		t.Errorf("%d legend swatches, want 24", swatches)
	}
}
