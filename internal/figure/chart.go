package figure

import (
	"errors"
	"fmt"
	"math"
	"regexp"
)

// Chart is one figure. Its JSON form is the file format of
// kit/internal/figdata: a JSON array of charts.
type Chart struct {
	// Name is the file name without ".svg": lower case letters, digits
	// and '-', so that a command writes the same names on every run.
	Name  string `json:"name"`
	Title string `json:"title"`
	X     Axis   `json:"x"`
	Y     Axis   `json:"y"`
	// Categories, when set, make the chart a bar chart: one group per
	// category (drawn as rows, the names on the left), one bar per series
	// in each, Series[i].Values[j] the value of series i in category j.
	// X then describes the values' axis and Y is unused.
	Categories []string `json:"categories,omitempty"`
	Series     []Series `json:"series"`
	// Marks are vertical lines across a line chart at an X value, with a
	// label: the fault, the start of a spike.
	Marks []Mark `json:"marks,omitempty"`
}

// Axis describes one axis.
type Axis struct {
	// Label names the quantity and its unit: "latency (ms)".
	Label string `json:"label"`
	// Log draws the axis on a logarithmic scale (every value must be
	// positive).
	Log bool `json:"log,omitempty"`
	// Min and Max, when set, fix the axis's range (a share from 0 to 100);
	// otherwise it fits the data.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Series is one named line or one set of bars.
type Series struct {
	Name   string    `json:"name"`
	Points []Point   `json:"points,omitempty"` // line charts
	Values []float64 `json:"values,omitempty"` // bar charts: one per category
}

// Point is one point of a line.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Mark is a vertical line at X, labelled.
type Mark struct {
	X     float64 `json:"x"`
	Label string  `json:"label"`
}

// Bound returns a pointer to v, for [Axis.Min] and [Axis.Max].
func Bound(v float64) *float64 { return &v }

// ErrInvalid is returned by [Chart.Validate] (and so by [Chart.WriteSVG])
// for a chart that cannot be drawn as described.
var ErrInvalid = errors.New("figure: invalid chart")

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Validate reports whether the chart can be drawn: a valid name, a title,
// labelled axes whose bounds, when set, are in order, at least one series,
// each named and of the chart's kind, finite values, and on a logarithmic
// axis positive values and bounds and at least one point. The errors wrap
// [ErrInvalid].
func (c Chart) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalid, c.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case !nameRE.MatchString(c.Name):
		return bad("the name must be lower case letters, digits and '-'")
	case c.Title == "":
		return bad("no title")
	case c.X.Label == "" || (c.Categories == nil && c.Y.Label == ""):
		return bad("an axis has no label")
	case len(c.Series) == 0:
		return bad("no series")
	case c.Categories != nil && len(c.Marks) > 0:
		return bad("marks on a bar chart")
	}
	for _, a := range []Axis{c.X, c.Y} {
		if err := a.check(); err != "" {
			return bad("axis %q: %s", a.Label, err)
		}
	}
	for _, m := range c.Marks {
		if !finite(m.X) || (c.X.Log && m.X <= 0) {
			return bad("mark %q at %v, off the axis", m.Label, m.X)
		}
	}
	points := 0
	for _, s := range c.Series {
		if s.Name == "" {
			return bad("a series has no name")
		}
		if c.Categories != nil {
			if len(s.Values) != len(c.Categories) || s.Points != nil {
				return bad("series %q: a bar chart wants one value per category", s.Name)
			}
			for _, v := range s.Values {
				if !finite(v) || (c.X.Log && v <= 0) {
					return bad("series %q: the value %v cannot be drawn on its axis", s.Name, v)
				}
			}
			continue
		}
		if s.Values != nil {
			return bad("series %q: values on a line chart", s.Name)
		}
		for _, p := range s.Points {
			if !finite(p.X) || !finite(p.Y) {
				return bad("series %q: a point at (%v, %v)", s.Name, p.X, p.Y)
			}
			if (c.X.Log && p.X <= 0) || (c.Y.Log && p.Y <= 0) {
				return bad("series %q: a value <= 0 on a logarithmic axis", s.Name)
			}
		}
		points += len(s.Points)
	}
	if c.Categories == nil && points == 0 && (c.X.Log || c.Y.Log) {
		return bad("a logarithmic axis and no point to fit it to")
	}
	return nil
}

// check describes what is wrong with the axis's bounds, "" when nothing.
func (a Axis) check() string {
	for _, b := range []*float64{a.Min, a.Max} {
		if b != nil && (!finite(*b) || (a.Log && *b <= 0)) {
			return fmt.Sprintf("the bound %v cannot be drawn", *b)
		}
	}
	if a.Min != nil && a.Max != nil && *a.Min >= *a.Max {
		return fmt.Sprintf("min %v not below max %v", *a.Min, *a.Max)
	}
	return ""
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
