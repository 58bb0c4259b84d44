package figure

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// svgSummary is what a test reads back from a drawn SVG: every text drawn
// and the number of paths.
type svgSummary struct {
	texts []string
	paths int
}

// ReadSVG parses an SVG document and returns its texts and number of
// paths, failing the test when it is not well-formed XML with an <svg>
// root.
func readSVG(t *testing.T, r io.Reader) svgSummary {
	t.Helper()
	dec := xml.NewDecoder(r)
	var s svgSummary
	var inText bool
	var root string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG does not parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			switch tok.Name.Local {
			case "text":
				inText = true
				s.texts = append(s.texts, "")
			case "path":
				s.paths++
			}
		case xml.EndElement:
			if tok.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				s.texts[len(s.texts)-1] += string(tok)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return s
}

func (s svgSummary) has(text string) bool {
	for _, t := range s.texts {
		if strings.TrimSpace(t) == text {
			return true
		}
	}
	return false
}

func TestWriteSVGHoldsItsSeries(t *testing.T) {
	line := Chart{
		Name: "calls-over-time", Title: "Calls over time",
		X: Axis{Label: "time since the kill (s)"}, Y: Axis{Label: "calls/s", Min: Bound(0)},
		Series: []Series{
			{Name: "calls", Points: []Point{{-1, 400}, {0, 380}, {1, 400}}},
			{Name: "failed", Points: []Point{{-1, 0}, {0, 8}, {1, 0}}},
		},
		Marks: []Mark{{X: 0, Label: "SIGKILL user-3"}},
	}
	logX := Chart{
		Name: "latency-cdf", Title: "Latency", X: Axis{Label: "latency (µs)", Log: true}, Y: Axis{Label: "calls at or below (%)"},
		Series: []Series{{Name: "bare grpc-go", Points: []Point{{50, 50}, {200, 99}}}, {Name: "kit", Points: []Point{{60, 50}, {250, 99}}}, {Name: "third", Points: []Point{{70, 50}, {300, 99}}}},
	}
	bars := Chart{
		Name: "ratios", Title: "Cost against the base", X: Axis{Label: "ratio to the base (x)"},
		Categories: []string{"bare grpc-go", "kit default chains"},
		Series:     []Series{{Name: "p50", Values: []float64{1, 1.08}}, {Name: "calls/s", Values: []float64{1, 0.98}}},
	}
	for _, c := range []Chart{line, logX, bars} {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			path, err := c.WriteSVG(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, c.Name+".svg"); path != want {
				t.Errorf("written to %s, want %s", path, want)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := readSVG(t, f)
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
			for _, w := range want {
				if !s.has(w) {
					t.Errorf("no text %q in the SVG; texts: %q", w, s.texts)
				}
			}
			// A line and its points per series, or a bar per value, each
			// at least one path, in the plot and again in the legend.
			minPaths := 2 * len(c.Series)
			if c.Categories != nil {
				minPaths = len(c.Series) * (len(c.Categories) + 1)
			}
			if s.paths < minPaths+len(c.Marks) {
				t.Errorf("%d paths, want at least %d", s.paths, minPaths+len(c.Marks))
			}
		})
	}
}

func TestSVGIsDeterministic(t *testing.T) {
	c := Chart{Name: "a", Title: "A", X: Axis{Label: "x (s)"}, Y: Axis{Label: "y (%)"},
		Series: []Series{{Name: "s", Points: []Point{{0, 1}, {1, 2}}}}}
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
	ok := Chart{Name: "ok-1", Title: "T", X: Axis{Label: "x"}, Y: Axis{Label: "y"}, Series: []Series{{Name: "s", Points: []Point{{1, 1}}}}}
	for _, tc := range []struct {
		name   string
		change func(*Chart)
	}{
		{"bad name", func(c *Chart) { c.Name = "Has Spaces" }},
		{"no title", func(c *Chart) { c.Title = "" }},
		{"no y label", func(c *Chart) { c.Y.Label = "" }},
		{"no series", func(c *Chart) { c.Series = nil }},
		{"unnamed series", func(c *Chart) { c.Series[0].Name = "" }},
		{"zero on a log axis", func(c *Chart) { c.X.Log = true; c.Series[0].Points[0].X = 0 }},
		{"values on a line chart", func(c *Chart) { c.Series[0].Values = []float64{1} }},
		{"too few bar values", func(c *Chart) {
			c.Categories = []string{"a", "b"}
			c.Series[0] = Series{Name: "s", Values: []float64{1}}
		}},
		{"marks on bars", func(c *Chart) {
			c.Categories = []string{"a"}
			c.Series[0] = Series{Name: "s", Values: []float64{1}}
			c.Marks = []Mark{{X: 1, Label: "m"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Series = []Series{{Name: "s", Points: []Point{{1, 1}}}}
			tc.change(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate of a valid chart = %v", err)
	}
}
