package figure_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/internal/figure"
	"github.com/grpckit/grpckit/internal/figure/figuretest"
)

func TestWriteSVGHoldsItsSeries(t *testing.T) {
	line := figure.Chart{
		Name: "calls-over-time", Title: "Calls over time",
		X: figure.Axis{Label: "time since the kill (s)"}, Y: figure.Axis{Label: "calls/s", Min: figure.Bound(0)},
		Series: []figure.Series{
			{Name: "calls", Points: []figure.Point{{-1, 400}, {0, 380}, {1, 400}}},
			{Name: "failed", Points: []figure.Point{{-1, 0}, {0, 8}, {1, 0}}},
			// No calls in the slice at 0: no point there.
			{Name: "share", Points: []figure.Point{{-1, 50}, {1, 40}}},
		},
		Marks: []figure.Mark{{X: 0, Label: "SIGKILL user-3"}},
	}
	logX := figure.Chart{
		Name: "latency-cdf", Title: "Latency", X: figure.Axis{Label: "latency (µs)", Log: true}, Y: figure.Axis{Label: "calls at or below (%)"},
		Series: []figure.Series{{Name: "bare grpc-go", Points: []figure.Point{{50, 50}, {200, 99}}}, {Name: "kit", Points: []figure.Point{{60, 50}, {250, 99}}}, {Name: "third", Points: []figure.Point{{70, 50}, {300, 99}}}},
	}
	bars := figure.Chart{
		Name: "ratios", Title: "Cost against the base", X: figure.Axis{Label: "ratio to the base (x)"},
		Categories: []string{"bare grpc-go", "kit default chains"},
		Series:     []figure.Series{{Name: "p50", Values: []float64{1, 1.08}}, {Name: "calls/s", Values: []float64{1, 0.98}}},
	}
	for _, c := range []figure.Chart{line, logX, bars} {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			path, err := c.WriteSVG(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, c.Name+".svg"); path != want {
				t.Errorf("written to %s, want %s", path, want)
			}
			s := figuretest.Read(t, path)
			want := []string{c.Title, c.X.Label}
			if c.Categories == nil {
				want = append(want, c.Y.Label)
			}
			want = append(want, c.Categories...)
			for _, ser := range c.Series {
				want = append(want, ser.Name)
			}
			for _, m := range c.Marks {
				want = append(want, m.Label)
			}
			s.Holds(t, want...)
			if s.Background != "#FFFFFF" {
				t.Errorf("background %q, want the whole canvas filled opaque white first", s.Background)
			}
			for _, ser := range c.Series {
				n := len(ser.Points)
				if c.Categories != nil {
					n = len(ser.Values)
				}
				s.HoldsPoints(t, ser.Name, n)
			}
		})
	}
}

func TestSVGIsDeterministic(t *testing.T) {
	c := figure.Chart{Name: "a", Title: "A", X: figure.Axis{Label: "x (s)"}, Y: figure.Axis{Label: "y (%)"},
		Series: []figure.Series{{Name: "s", Points: []figure.Point{{0, 1}, {1, 2}}}}}
	var a, b bytes.Buffer
	if err := c.SVG(&a); err != nil {
		t.Fatal(err)
	}
	if err := c.SVG(&b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.String(), b.String()); diff != "" {
		t.Errorf("two drawings of one chart differ (-first +second):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	ok := figure.Chart{Name: "ok-1", Title: "T", X: figure.Axis{Label: "x"}, Y: figure.Axis{Label: "y"}, Series: []figure.Series{{Name: "s", Points: []figure.Point{{1, 1}}}}}
	for _, tc := range []struct {
		name   string
		change func(*figure.Chart)
	}{
		{"bad name", func(c *figure.Chart) { c.Name = "Has Spaces" }},
		{"no title", func(c *figure.Chart) { c.Title = "" }},
		{"no y label", func(c *figure.Chart) { c.Y.Label = "" }},
		{"no series", func(c *figure.Chart) { c.Series = nil }},
		{"unnamed series", func(c *figure.Chart) { c.Series[0].Name = "" }},
		{"zero on a log axis", func(c *figure.Chart) { c.X.Log = true; c.Series[0].Points[0].X = 0 }},
		{"values on a line chart", func(c *figure.Chart) { c.Series[0].Values = []float64{1} }},
		{"too few bar values", func(c *figure.Chart) {
			c.Categories = []string{"a", "b"}
			c.Series[0] = figure.Series{Name: "s", Values: []float64{1}}
		}},
		{"a NaN point", func(c *figure.Chart) { c.Series[0].Points[0].Y = math.NaN() }},
		{"an infinite bar", func(c *figure.Chart) {
			c.Categories = []string{"a"}
			c.Series[0] = figure.Series{Name: "s", Values: []float64{math.Inf(1)}}
		}},
		{"bounds the wrong way round", func(c *figure.Chart) { c.Y.Min, c.Y.Max = figure.Bound(5), figure.Bound(1) }},
		{"a bound of 0 on a log axis", func(c *figure.Chart) { c.Y.Log = true; c.Y.Min = figure.Bound(0) }},
		{"a log axis without points", func(c *figure.Chart) { c.X.Log = true; c.Series[0].Points = nil }},
		{"a mark off a log axis", func(c *figure.Chart) { c.X.Log = true; c.Marks = []figure.Mark{{X: -1, Label: "m"}} }},
		{"marks on bars", func(c *figure.Chart) {
			c.Categories = []string{"a"}
			c.Series[0] = figure.Series{Name: "s", Values: []float64{1}}
			c.Marks = []figure.Mark{{X: 1, Label: "m"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Series = []figure.Series{{Name: "s", Points: []figure.Point{{1, 1}}}}
			tc.change(&c)
			if err := c.Validate(); !errors.Is(err, figure.ErrInvalid) {
				t.Errorf("Validate = %v, want figure.ErrInvalid", err)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate of a valid chart = %v", err)
	}
	// Charts gonum/plot leaves without a range are drawn with one: one
	// point too large for its padding, a fixed bound beyond the data.
	for name, c := range map[string]figure.Chart{
		"one large point": {Name: "a", Title: "T", X: figure.Axis{Label: "x"}, Y: figure.Axis{Label: "y"},
			Series: []figure.Series{{Name: "s", Points: []figure.Point{{1e17, 1}}}}},
		"min beyond the data": {Name: "b", Title: "T", X: figure.Axis{Label: "x"}, Y: figure.Axis{Label: "y", Min: figure.Bound(5)},
			Series: []figure.Series{{Name: "s", Points: []figure.Point{{1, 1}, {2, 3}}}}},
		"one huge point on a log axis": {Name: "c", Title: "T", X: figure.Axis{Label: "x", Log: true}, Y: figure.Axis{Label: "y"},
			Series: []figure.Series{{Name: "s", Points: []figure.Point{{1e308, 1}}}}},
	} {
		if err := c.SVG(io.Discard); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestREADMEFiguresOpaque keeps the README's figures readable on a dark
// page: each is drawn on an opaque background.
func TestREADMEFiguresOpaque(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "docs", "figures", "*.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no figures in docs/figures")
	}
	for _, p := range paths {
		if bg := figuretest.Read(t, p).Background; bg != "#FFFFFF" {
			t.Errorf("%s: background %q, want opaque white (redraw it)", p, bg)
		}
	}
}
