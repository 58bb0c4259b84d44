package figuretest_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/internal/figure"
	"github.com/grpckit/grpckit/internal/figure/figuretest"
)

// TestDrawn reads back what each legend entry draws, told apart from the
// others (the eighth series shares the first one's colour) and from its
// own swatch in the legend.
func TestDrawn(t *testing.T) {
	line := figure.Chart{Name: "lines", Title: "Lines", X: figure.Axis{Label: "x"}, Y: figure.Axis{Label: "y", Min: figure.Bound(0), Max: figure.Bound(100)},
		Marks: []figure.Mark{{X: 1, Label: "fault"}}}
	want := map[string]figuretest.Drawing{}
	for i := range 9 {
		s := figure.Series{Name: "series " + string(rune('a'+i))}
		for x := range i % 4 { // 0 to 3 points; none at x = 2
			s.Points = append(s.Points, figure.Point{X: float64(x + x/2), Y: float64(10 * (i + 1))})
		}
		line.Series = append(line.Series, s)
		want[s.Name] = figuretest.Drawing{Vertices: i % 4, Glyphs: i % 4}
		if i%4 == 1 { // a line of one point is not drawn
			want[s.Name] = figuretest.Drawing{Glyphs: 1}
		}
	}
	bars := figure.Chart{Name: "bars", Title: "Bars", X: figure.Axis{Label: "x"}, Categories: []string{"one", "two", "three"},
		Series: []figure.Series{{Name: "p50", Values: []float64{1, 2, 3}}, {Name: "p99", Values: []float64{2, 3, 4}}}}
	for _, s := range bars.Series {
		want[s.Name] = figuretest.Drawing{Bars: 3}
	}
	for _, c := range []figure.Chart{line, bars} {
		t.Run(c.Name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := c.SVG(&buf); err != nil {
				t.Fatal(err)
			}
			s := figuretest.Parse(t, &buf)
			for _, ser := range c.Series {
				if diff := cmp.Diff(want[ser.Name], s.Drawn(t, ser.Name)); diff != "" {
					t.Errorf("%s drawn (-want +got):\n%s", ser.Name, diff)
				}
			}
		})
	}
}

func TestBackground(t *testing.T) {
	for _, tc := range []struct {
		name, first, want string
	}{
		{"opaque, whole canvas", `<path d="M0,0L100,0L100,50L0,50Z" style="fill:#FFFFFF" />`, "#FFFFFF"},
		{"the plot area only", `<path d="M0,10L100,10L100,50L0,50Z" style="fill:#FFFFFF" />`, ""},
		{"translucent", `<path d="M0,0L100,0L100,50L0,50Z" style="fill:#FFFFFF;fill-opacity:0.5" />`, ""},
		{"a text first", `<text x="1" y="1">t</text><path d="M0,0L100,0L100,50L0,50Z" style="fill:#FFFFFF" />`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `<svg viewBox="0 0 100 50" xmlns="http://www.w3.org/2000/svg">` + tc.first + `</svg>`
			if got := figuretest.Parse(t, strings.NewReader(doc)).Background; got != tc.want {
				t.Errorf("Background = %q, want %q", got, tc.want)
			}
		})
	}
}
