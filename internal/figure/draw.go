package figure

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The size of a figure: about a README's width, the plot above a legend of
// one line per series.
const (
	width      = 7 * vg.Inch
	plotHeight = 3.6 * vg.Inch
	legendLine = 11 * vg.Millimeter / 3 // one entry's height
	legendPad  = 6
)

// markColor is the colour of the vertical marks.
var markColor = color.Gray{Y: 90}

// background is the colour of the whole figure.
var background = color.White

// WriteSVG draws the chart into dir/Name.svg, creating dir when needed,
// and returns the file's path.
func (c Chart) WriteSVG(dir string) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, c.Name+".svg")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := c.SVG(f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// SVG draws the chart as an SVG document on w.
func (c Chart) SVG(w io.Writer) (err error) {
	if err := c.Validate(); err != nil {
		return err
	}
	// gonum/plot panics on what it cannot draw; Validate refuses what is
	// known of that, and a panic past it is this chart's error too.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w %q: %w: %v", ErrInvalid, c.Name, errDrawPanicked, r)
		}
	}()
	p := plot.New()
	p.BackgroundColor = nil // the whole canvas is filled below
	p.Title.Padding = vg.Points(6)
	p.Title.Text = c.Title
	p.X.Label.Text = c.X.Label
	p.Y.Label.Text = c.Y.Label
	legend := plot.NewLegend()
	legend.Left, legend.Top, legend.Padding = true, true, vg.Points(2)
	if c.Categories != nil {
		err = c.bars(p, &legend)
	} else {
		err = c.lines(p, &legend)
	}
	if err != nil {
		return fmt.Errorf("figure %q: %w", c.Name, err)
	}
	p.Add(plotter.NewGrid())

	for _, sty := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &legend.TextStyle} {
		sty.Font.Variant = "Sans"
	}

	legendHeight := vg.Length(len(c.Series))*(legendLine+legend.Padding) + 2*legendPad
	canvas := vgsvg.New(width, plotHeight+legendHeight)
	dc := draw.New(canvas)
	// An opaque background under the title, the plot and the legend alike:
	// on a transparent one, the black text is lost on a dark page.
	dc.SetColor(background)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, 0, 0, legendHeight, 0))
	legend.Draw(draw.Crop(dc, 4*legendPad, 0, legendPad, -plotHeight-legendPad))
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return err
	}
	_, err = w.Write(bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Sans;"), []byte(fontFamily)))
	return err
}

// errDrawPanicked marks the error of a chart that gonum/plot panicked on:
// one that Validate should have refused.
var errDrawPanicked = errors.New("drawing panicked")

// fontFamily names, after the font the text was measured with (which a
// reader may not have), fonts of the same metrics, so that labels fit.
const fontFamily = "font-family:Liberation Sans,Arial,Helvetica,sans-serif;"

// lines draws line charts: every series a line with its points, the marks
// as dashed vertical lines labelled at the top.
func (c Chart) lines(p *plot.Plot, legend *plot.Legend) error {
	if c.X.Log {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	if c.Y.Log {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	for i, s := range c.Series {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j] = plotter.XY{X: pt.X, Y: pt.Y}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		line.Color, line.Dashes = plotutil.Color(i), plotutil.Dashes(i/7)
		points.Color, points.Shape, points.Radius = plotutil.Color(i), plotutil.Shape(i), vg.Points(2)
		p.Add(line, points)
		legend.Add(s.Name, line, points)
	}
	c.fix(p)
	for _, m := range c.Marks {
		line, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: p.Y.Min}, {X: m.X, Y: p.Y.Max}})
		if err != nil {
			return fmt.Errorf("mark %q: %w", m.Label, err)
		}
		line.Color, line.Dashes, line.Width = markColor, []vg.Length{vg.Points(4), vg.Points(3)}, vg.Points(1.2)
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.X, Y: p.Y.Max}}, Labels: []string{" " + m.Label}})
		if err != nil {
			return fmt.Errorf("mark %q: %w", m.Label, err)
		}
		labels.TextStyle[0].Font.Variant = "Sans"
		labels.TextStyle[0].Color = markColor
		labels.TextStyle[0].YAlign = draw.YTop
		p.Add(line, labels)
	}
	return nil
}

// bars draws horizontal bar groups, one row per category, the categories
// listed top to bottom in their order.
func (c Chart) bars(p *plot.Plot, legend *plot.Legend) error {
	n := len(c.Series)
	barWidth := vg.Points(min(14, 150/float64(n*len(c.Categories))))
	rows := make([]string, len(c.Categories))
	for j, cat := range c.Categories { // plot rows go bottom up
		// The spaces leave room for a reader's font a little wider than
		// the one measured.
		rows[len(rows)-1-j] = cat + "   "
	}
	for i, s := range c.Series {
		vals := make(plotter.Values, len(s.Values))
		for j, v := range s.Values {
			vals[len(vals)-1-j] = v
		}
		b, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		b.Horizontal = true
		b.Color, b.LineStyle.Width = plotutil.Color(i), 0
		b.Offset = vg.Length(float64(n-1)/2-float64(i)) * barWidth
		p.Add(b)
		legend.Add(s.Name, b)
	}
	p.NominalY(rows...)
	p.Y.Label.Text = ""
	p.Y.Min, p.Y.Max = p.Y.Min-0.5, p.Y.Max+0.5 // room for the outer bars of a group
	p.X.Max *= 1.05
	c.fix(p)
	return nil
}

// fix applies the axes' fixed ranges.
func (c Chart) fix(p *plot.Plot) {
	if c.X.Min != nil {
		p.X.Min = *c.X.Min
	}
	if c.X.Max != nil {
		p.X.Max = *c.X.Max
	}
	if c.Categories != nil {
		return
	}
	if c.Y.Min != nil {
		p.Y.Min = *c.Y.Min
	}
	if c.Y.Max != nil {
		p.Y.Max = *c.Y.Max
	}
	widen(&p.X, c.X)
	widen(&p.Y, c.Y)
}

// widen gives an axis left without a range a range around its values: a
// single value too large for gonum/plot's padding of one unit, or a fixed
// bound beyond the data (min 5 for values up to 3). The bound the chart
// fixes stays.
func widen(a *plot.Axis, want Axis) {
	if a.Max > a.Min {
		return
	}
	if want.Log {
		if up := a.Min * 10; want.Max == nil && !math.IsInf(up, 0) {
			a.Max = up
		} else {
			a.Min = a.Max / 10
		}
		return
	}
	d := max(math.Abs(a.Min), math.Abs(a.Max)) / 10
	if d == 0 || a.Min-d == a.Min {
		d = 1
	}
	if want.Max != nil {
		a.Min = a.Max - d
	} else {
		a.Max = a.Min + d
	}
}
