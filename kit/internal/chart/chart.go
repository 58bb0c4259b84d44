package chart

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"
)

// Geometry of a chart, in SVG user units.
const (
	width      = 640
	plotLeft   = 52
	plotRight  = width - 12
	plotTop    = 22
	plotHeight = 110
	axisSpace  = 30 // below the plot: tick labels and the axis label
	bandHeight = 14 // one row of a band chart
	legendRow  = 16
	colors     = 8 // line classes c0 ... c7
	dashes     = 3 // line classes d0 (solid), d1, d2: the colors' first, second, third cycle
)

// Chart is one chart: lines (sharing a y axis) or bands, over the times in
// Times, with marks. Exactly one of Lines and Bands is usually set.
type Chart struct {
	ID    string // id of the svg element
	Title string // drawn above the plot
	Unit  string // the y axis label, units included ("calls/s", "ms")
	// Times are the sample times in Unix milliseconds, oldest first; every
	// line's Values and band's States have one entry per time.
	Times []int64
	// From and To bound the time axis in Unix milliseconds; zero: the
	// first and last time.
	From, To int64
	// Max is the top of the y axis; zero: from the values, rounded up.
	Max   float64
	Lines []Line
	Bands []Band
	Marks []Mark
}

// Line is one series of a line chart; NaN and infinite values are gaps.
type Line struct {
	Key    string // data-series of its path, and its legend entry
	Values []float64
}

// Band is one row of a band chart: a state per time ("" for none), drawn
// as rectangles of class "band-<state>".
type Band struct {
	Key    string // the row's label and data-band
	States []string
}

// Mark is an event drawn as a vertical line at its time, with a title that
// a browser shows on hover.
type Mark struct {
	Time  int64  // Unix milliseconds
	Event string // class "mark-<event>" and data-event
	Key   string // data-key: what the event happened to ("" for the whole chart)
	Title string
}

// SVG returns the chart as an svg element.
func (c Chart) SVG() string {
	var b strings.Builder
	d := c.scales()
	height := plotTop + d.plotHeight + axisSpace + legendRow*len(c.legendRows())
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img"`,
		esc(c.ID), width, height, width, height)
	fmt.Fprintf(&b, ` data-t0="%d" data-t1="%d" data-v0="0" data-v1="%s" data-x0="%d" data-x1="%d" data-y0="%d" data-y1="%d">`,
		d.t0, d.t1, num(d.vmax), plotLeft, plotRight, plotTop, plotTop+d.plotHeight)
	fmt.Fprintf(&b, `<title>%s</title><text class="title" x="%d" y="14">%s</text>`, esc(c.Title), plotLeft, esc(c.Title))
	c.drawTimeAxis(&b, d)
	if len(c.Bands) > 0 {
		c.drawBands(&b, d)
	} else {
		c.drawValueAxis(&b, d)
		for i, l := range c.Lines {
			fmt.Fprintf(&b, `<path class="line %s" data-series="%s" d="%s"/>`, lineClass(i), esc(l.Key), c.path(l.Values, d))
		}
	}
	c.drawMarks(&b, d)
	c.drawLegend(&b, d)
	b.WriteString(`</svg>`)
	return b.String()
}

// scale maps times and values to the plot.
type scale struct {
	t0, t1     int64
	vmax       float64
	plotHeight int
}

func (c Chart) scales() scale {
	s := scale{t0: c.From, t1: c.To, vmax: c.Max, plotHeight: plotHeight}
	if len(c.Times) > 0 {
		if s.t0 == 0 {
			s.t0 = c.Times[0]
		}
		if s.t1 == 0 {
			s.t1 = c.Times[len(c.Times)-1]
		}
	}
	if s.t1 <= s.t0 {
		s.t1 = s.t0 + 1000
	}
	if len(c.Bands) > 0 {
		s.plotHeight = bandHeight * len(c.Bands)
	}
	if s.vmax <= 0 {
		for _, l := range c.Lines {
			for _, v := range l.Values {
				if finite(v) && v > s.vmax {
					s.vmax = v
				}
			}
		}
		s.vmax = niceCeil(s.vmax)
	}
	return s
}

func (s scale) x(t int64) float64 {
	return plotLeft + float64(t-s.t0)/float64(s.t1-s.t0)*(plotRight-plotLeft)
}

func (s scale) y(v float64) float64 {
	return plotTop + float64(s.plotHeight)*(1-v/s.vmax)
}

// path is the d attribute of a line: a run of values between gaps is one
// subpath; a lone value is a dot (a zero-length segment with round caps).
// A value whose time is outside the time axis is a gap: nothing is drawn
// outside the plot, whatever the times (a wall clock set back).
func (c Chart) path(values []float64, s scale) string {
	drawn := func(i int) bool {
		return i < len(values) && i < len(c.Times) && finite(values[i]) && c.Times[i] >= s.t0 && c.Times[i] <= s.t1
	}
	var b strings.Builder
	pen := false
	for i, v := range values {
		if !drawn(i) {
			pen = false
			continue
		}
		op := "L"
		if !pen {
			op = " M"
		}
		fmt.Fprintf(&b, "%s%s,%s", op, coord(s.x(c.Times[i])), coord(s.y(v)))
		if !pen && !drawn(i+1) {
			b.WriteString("l0,0")
		}
		pen = true
	}
	return strings.TrimSpace(b.String())
}

// drawTimeAxis draws the time axis with ticks at round times, labelled
// hh:mm:ss in the server's time zone.
func (c Chart) drawTimeAxis(b *strings.Builder, s scale) {
	bottom := plotTop + s.plotHeight
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, plotLeft, bottom, plotRight, bottom)
	step := timeStep(time.Duration(s.t1-s.t0) * time.Millisecond).Milliseconds()
	for t := (s.t0 + step - 1) / step * step; t <= s.t1; t += step {
		x := coord(s.x(t))
		fmt.Fprintf(b, `<line class="grid" x1="%s" y1="%d" x2="%s" y2="%d"/>`, x, plotTop, x, bottom)
		fmt.Fprintf(b, `<text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`, x, bottom+12,
			time.UnixMilli(t).Format(time.TimeOnly))
	}
	fmt.Fprintf(b, `<text class="label" x="%d" y="%d" text-anchor="end">time</text>`, plotRight, bottom+26)
}

// drawValueAxis draws the y axis: a few round ticks from 0 to the top, and
// the unit.
func (c Chart) drawValueAxis(b *strings.Builder, s scale) {
	bottom := plotTop + s.plotHeight
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, plotLeft, plotTop, plotLeft, bottom)
	step := s.vmax / 4
	for i := range 5 {
		v := step * float64(i)
		y := coord(s.y(v))
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, plotLeft, y, plotRight, y)
		fmt.Fprintf(b, `<text class="tick" x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`, plotLeft-4, y, num(v))
	}
	fmt.Fprintf(b, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, plotRight, 14, esc(c.Unit))
}

// drawBands draws each band as a row of rectangles, one per run of equal
// states.
func (c Chart) drawBands(b *strings.Builder, s scale) {
	half := 0.0 // half a step either side of a sample
	if len(c.Times) > 1 {
		half = (s.x(c.Times[1]) - s.x(c.Times[0])) / 2
	}
	for row, band := range c.Bands {
		top := plotTop + row*bandHeight
		fmt.Fprintf(b, `<g class="band" data-band="%s"><text class="tick" x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`,
			esc(band.Key), plotLeft-4, top+bandHeight/2, esc(shorten(band.Key, 8)))
		for start := 0; start < len(band.States) && start < len(c.Times); {
			end := start
			for end+1 < len(band.States) && end+1 < len(c.Times) && band.States[end+1] == band.States[start] {
				end++
			}
			if st := band.States[start]; st != "" {
				x0 := max(s.x(c.Times[start])-half, plotLeft)
				x1 := min(s.x(c.Times[end])+half, plotRight)
				if x1 <= x0 { // outside the time axis
					start = end + 1
					continue
				}
				fmt.Fprintf(b, `<rect class="band-%s" data-state="%s" x="%s" y="%d" width="%s" height="%d"><title>%s: %s %s–%s</title></rect>`,
					esc(st), esc(st), coord(x0), top+1, coord(x1-x0), bandHeight-2, esc(band.Key), esc(st),
					time.UnixMilli(c.Times[start]).Format(time.TimeOnly), time.UnixMilli(c.Times[end]).Format(time.TimeOnly))
			}
			start = end + 1
		}
		b.WriteString(`</g>`)
	}
}

// drawMarks draws the marks inside the time axis as vertical lines, each
// with a wider invisible line to hover.
func (c Chart) drawMarks(b *strings.Builder, s scale) {
	bottom := plotTop + s.plotHeight
	for _, m := range c.Marks {
		if m.Time < s.t0 || m.Time > s.t1 {
			continue
		}
		x := coord(s.x(m.Time))
		fmt.Fprintf(b, `<g class="mark mark-%s" data-event="%s" data-key="%s" data-time="%d"><title>%s</title>`,
			esc(m.Event), esc(m.Event), esc(m.Key), m.Time, esc(m.Title))
		fmt.Fprintf(b, `<line x1="%s" y1="%d" x2="%s" y2="%d"/><line class="hit" x1="%s" y1="%d" x2="%s" y2="%d"/></g>`,
			x, plotTop, x, bottom, x, plotTop, x, bottom)
	}
}

// legendRows splits the lines' keys into rows that fit the width.
func (c Chart) legendRows() [][]int {
	var rows [][]int
	used := width
	for i, l := range c.Lines {
		w := 24 + 6*len(l.Key)
		if used+w > width-plotLeft {
			rows, used = append(rows, nil), 0
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], i)
		used += w
	}
	return rows
}

func (c Chart) drawLegend(b *strings.Builder, s scale) {
	y := plotTop + s.plotHeight + axisSpace
	for _, row := range c.legendRows() {
		x := plotLeft
		for _, i := range row {
			fmt.Fprintf(b, `<line class="swatch line %s" x1="%d" y1="%d" x2="%d" y2="%d"/><text class="key" x="%d" y="%d">%s</text>`,
				lineClass(i), x, y+8, x+12, y+8, x+16, y+11, esc(c.Lines[i].Key))
			x += 24 + 6*len(c.Lines[i].Key)
		}
		y += legendRow
	}
}

// lineClass is the classes of line i and its legend swatch: its color,
// c0 ... c7, and past eight lines a dash pattern, d1 or d2, so that lines
// of the same color are told apart.
func lineClass(i int) string {
	return fmt.Sprintf("c%d d%d", i%colors, i/colors%dashes)
}

// timeStep returns a round tick interval that gives at most about six ticks
// over span.
func timeStep(span time.Duration) time.Duration {
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute} {
		if span/d <= 6 {
			return d
		}
	}
	return time.Hour * (span/time.Hour/6 + 1)
}

// niceCeil rounds v up to 1, 2, 4 or 8 times a power of ten (1 for v <= 0), so
// that a quarter of it is a readable tick.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func shorten(s string, n int) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 && len(s) > n {
		s = s[i+1:]
	}
	return s
}

// coord writes a coordinate with one decimal.
func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// num writes a value with at most 3 decimals and no trailing zeros.
func num(f float64) string {
	s := strconv.FormatFloat(f, 'f', 3, 64)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

func esc(s string) string { return html.EscapeString(s) }
