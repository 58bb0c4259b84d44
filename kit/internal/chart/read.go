package chart

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Drawn is what a chart's SVG shows, read back from it by [Read]: the
// points of its lines, with coordinates turned back into times and values
// (exact to the pixel, a tenth of a unit), its marks and its bands.
type Drawn struct {
	ID, Title string
	Lines     map[string][]Point  // by Line.Key
	Bands     map[string][]string // by Band.Key: the states of its rectangles, left to right
	Marks     []Mark              // Title is the mark's title
}

// Point is a point of a line: a time in Unix milliseconds and a value.
type Point struct {
	Time  int64
	Value float64
}

type path struct {
	Series string `xml:"data-series,attr"`
	D      string `xml:"d,attr"`
}

type group struct {
	Class string `xml:"class,attr"`
	Event string `xml:"data-event,attr"`
	Key   string `xml:"data-key,attr"`
	Time  int64  `xml:"data-time,attr"`
	Band  string `xml:"data-band,attr"`
	Title string `xml:"title"`
	Rects []struct {
		State string `xml:"data-state,attr"`
	} `xml:"rect"`
}

// Read parses one svg element written by [Chart.SVG] (it must be
// well-formed XML) and returns what it draws.
func Read(svg string) (Drawn, error) {
	var e struct {
		ID     string  `xml:"id,attr"`
		T0     int64   `xml:"data-t0,attr"`
		T1     int64   `xml:"data-t1,attr"`
		V0     float64 `xml:"data-v0,attr"`
		V1     float64 `xml:"data-v1,attr"`
		X0     float64 `xml:"data-x0,attr"`
		X1     float64 `xml:"data-x1,attr"`
		Y0     float64 `xml:"data-y0,attr"`
		Y1     float64 `xml:"data-y1,attr"`
		Title  string  `xml:"title"`
		Paths  []path  `xml:"path"`
		Groups []group `xml:"g"`
	}
	if err := xml.Unmarshal([]byte(svg), &e); err != nil {
		return Drawn{}, fmt.Errorf("chart: %w", err)
	}
	d := Drawn{ID: e.ID, Title: e.Title, Lines: map[string][]Point{}, Bands: map[string][]string{}}
	for _, p := range e.Paths {
		var pts []Point
		for _, f := range strings.FieldsFunc(p.D, func(r rune) bool { return r == 'M' || r == 'L' || r == ' ' }) {
			f, _, _ = strings.Cut(f, "l") // a dot's zero-length segment
			xs, ys, ok := strings.Cut(f, ",")
			x, errX := strconv.ParseFloat(xs, 64)
			y, errY := strconv.ParseFloat(ys, 64)
			if !ok || errX != nil || errY != nil {
				return Drawn{}, fmt.Errorf("chart: line %q: bad point %q", p.Series, f)
			}
			pts = append(pts, Point{
				Time:  e.T0 + int64((x-e.X0)/(e.X1-e.X0)*float64(e.T1-e.T0)+0.5),
				Value: e.V0 + (e.Y1-y)/(e.Y1-e.Y0)*(e.V1-e.V0),
			})
		}
		d.Lines[p.Series] = pts
	}
	for _, g := range e.Groups {
		switch {
		case strings.HasPrefix(g.Class, "mark "):
			d.Marks = append(d.Marks, Mark{Time: g.Time, Event: g.Event, Key: g.Key, Title: g.Title})
		case g.Class == "band":
			for _, r := range g.Rects {
				d.Bands[g.Band] = append(d.Bands[g.Band], r.State)
			}
		}
	}
	return d, nil
}
