package figuretest

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// SVG is what a drawn figure holds: every text (title, axis labels, tick
// labels, legend entries, mark labels), the number of paths (lines, point
// glyphs, bars) and its background.
type SVG struct {
	Texts []string
	Paths int
	// Background is the fill of the first element drawn when it is an
	// opaque rectangle over the whole canvas (so that the figure reads
	// the same on a dark page), "" otherwise.
	Background string

	width, height float64
	elems         []element // in drawing order
}

// element is one drawn <path> or <text>.
type element struct {
	text       bool
	content    string  // a text's
	x, y, size float64 // a text's anchor (y up) and font size
	style      string  // a path's
	cmds       string  // a path's commands, one letter each
	pts        []point // a path's coordinates (y up)
}

type point struct{ x, y float64 }

// Read parses the SVG file at path, failing the test when it is not
// well-formed XML with an <svg> root.
func Read(t testing.TB, path string) SVG {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Parse(t, f)
}

// Parse parses an SVG document from r, as [Read].
func Parse(t testing.TB, r io.Reader) SVG {
	t.Helper()
	dec := xml.NewDecoder(r)
	var s SVG
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
				if vb := strings.Fields(attr(tok, "viewBox")); len(vb) == 4 {
					s.width, _ = strconv.ParseFloat(vb[2], 64)
					s.height, _ = strconv.ParseFloat(vb[3], 64)
				}
			}
			switch tok.Name.Local {
			case "text":
				inText = true
				s.Texts = append(s.Texts, "")
				e := element{text: true, size: fontSize(attr(tok, "style"))}
				e.x, _ = strconv.ParseFloat(attr(tok, "x"), 64)
				e.y, _ = strconv.ParseFloat(attr(tok, "y"), 64)
				if strings.Contains(attr(tok, "transform"), "scale(1, -1)") {
					e.y = -e.y
				}
				s.elems = append(s.elems, e)
			case "path":
				s.Paths++
				e := element{style: attr(tok, "style")}
				e.cmds, e.pts = pathData(attr(tok, "d"))
				s.elems = append(s.elems, e)
			}
		case xml.EndElement:
			if tok.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				s.Texts[len(s.Texts)-1] += string(tok)
				s.elems[len(s.elems)-1].content += string(tok)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	s.Background = s.background()
	return s
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

var fontSizeRE = regexp.MustCompile(`font-size:([0-9.]+)px`)

func fontSize(style string) float64 {
	m := fontSizeRE.FindStringSubmatch(style)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

var pathTokenRE = regexp.MustCompile(`[A-Za-z]|-?[0-9.]+(?:[eE][-+]?[0-9]+)?`)

// pathData reads the path data that vgsvg writes (absolute M, L, A, Q, C
// and Z) into its commands and the points they go through.
func pathData(d string) (string, []point) {
	var cmds strings.Builder
	var nums []float64
	var pts []point
	flush := func(cmd byte) {
		switch cmd {
		case 'A': // rx ry rotation large sweep x y
			for i := 6; i < len(nums); i += 7 {
				pts = append(pts, point{nums[i-1], nums[i]})
			}
		default:
			for i := 1; i < len(nums); i += 2 {
				pts = append(pts, point{nums[i-1], nums[i]})
			}
		}
		nums = nums[:0]
	}
	var cmd byte
	for _, tok := range pathTokenRE.FindAllString(d, -1) {
		if c := tok[0]; (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') {
			flush(cmd)
			cmd = c
			cmds.WriteByte(c)
			continue
		}
		v, _ := strconv.ParseFloat(tok, 64)
		nums = append(nums, v)
	}
	flush(cmd)
	return cmds.String(), pts
}

// bounds returns the box around a path's points.
func (e element) bounds() (minX, minY, maxX, maxY float64) {
	minX, minY, maxX, maxY = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range e.pts {
		minX, maxX = min(minX, p.x), max(maxX, p.x)
		minY, maxY = min(minY, p.y), max(maxY, p.y)
	}
	return minX, minY, maxX, maxY
}

var fillRE = regexp.MustCompile(`(?:^|;)fill:(#[0-9A-Fa-f]{6})(?:;|$)`)

// background returns the fill of the first element when it is an opaque
// rectangle over the whole canvas.
func (s SVG) background() string {
	if len(s.elems) == 0 || s.elems[0].text {
		return ""
	}
	e := s.elems[0]
	m := fillRE.FindStringSubmatch(e.style)
	if m == nil || strings.Contains(e.style, "fill-opacity") || len(e.pts) < 4 {
		return ""
	}
	const eps = 0.01
	minX, minY, maxX, maxY := e.bounds()
	if minX > eps || minY > eps || maxX < s.width-eps || maxY < s.height-eps {
		return ""
	}
	return m[1]
}

// Has reports whether one of the texts is text (spaces around it
// ignored).
func (s SVG) Has(text string) bool {
	for _, t := range s.Texts {
		if strings.TrimSpace(t) == text {
			return true
		}
	}
	return false
}

// Holds fails the test unless the SVG has every text of want.
func (s SVG) Holds(t testing.TB, want ...string) {
	t.Helper()
	for _, w := range want {
		if !s.Has(w) {
			t.Errorf("no text %q in the SVG; texts: %q", w, s.Texts)
		}
	}
}

// Drawing is what the SVG draws, outside the legend, in one legend entry's
// style: the vertices of its lines, its point glyphs and its bars.
type Drawing struct {
	Vertices, Glyphs, Bars int
}

// Drawn returns what the SVG draws for the legend entry name: the paths,
// other than the entry's own swatch, drawn in the style of the swatch's
// line, glyph or bar (for a glyph, also of its shape). It fails the test
// when the legend has no such entry, or when another entry's swatch is
// the same, so that the two could not be told apart.
//
// A line that leaves the plot's range is clipped, which adds vertices.
func (s SVG) Drawn(t testing.TB, name string) Drawing {
	t.Helper()
	entries := s.legend()
	sw, ok := entries[name]
	if !ok {
		names := make([]string, 0, len(entries))
		for n := range entries {
			names = append(names, n)
		}
		t.Fatalf("no legend entry %q in the SVG; entries: %q", name, names)
	}
	for other, o := range entries {
		if other != name && o.key() == sw.key() {
			t.Fatalf("legend entries %q and %q have the same swatch", name, other)
		}
	}
	skip := map[int]bool{}
	for _, i := range sw.paths {
		skip[i] = true
	}
	var d Drawing
	for i, e := range s.elems {
		if e.text || skip[i] {
			continue
		}
		switch {
		case sw.line >= 0 && e.style == s.elems[sw.line].style:
			d.Vertices += strings.Count(e.cmds, "M") + strings.Count(e.cmds, "L")
		case sw.glyph >= 0 && sameGlyph(e, s.elems[sw.glyph]):
			d.Glyphs++
		case sw.bar >= 0 && e.style == s.elems[sw.bar].style:
			d.Bars++
		}
	}
	return d
}

// HoldsPoints fails the test unless the legend entry name is drawn with n
// points: a line through n vertices (none for a single point) with a glyph
// at each when its swatch is a line, n bars when it is a bar.
func (s SVG) HoldsPoints(t testing.TB, name string, n int) {
	t.Helper()
	d := s.Drawn(t, name)
	sw := s.legend()[name]
	var want Drawing
	if sw.line >= 0 && n > 1 {
		want.Vertices = n
	}
	if sw.glyph >= 0 {
		want.Glyphs = n
	}
	if sw.bar >= 0 {
		want.Bars = n
	}
	if d != want {
		t.Errorf("series %q drawn as %+v, want %+v", name, d, want)
	}
}

// swatch is a legend entry's thumbnail: the indexes of its paths among the
// elements, and of its line, glyph and bar (-1: none).
type swatch struct {
	paths            []int
	line, glyph, bar int
	s                *SVG
}

// key identifies a swatch by the styles (and the glyph's shape) it draws.
func (w swatch) key() string {
	var b strings.Builder
	for _, i := range []int{w.line, w.glyph, w.bar} {
		if i >= 0 {
			e := w.s.elems[i]
			b.WriteString(e.style + "|" + e.cmds)
			for _, p := range e.pts {
				fmt.Fprintf(&b, "|%.1f,%.1f", p.x-e.pts[0].x, p.y-e.pts[0].y)
			}
		}
		b.WriteString(";")
	}
	return b.String()
}

// legend finds each legend entry's swatch: gonum draws an entry's
// thumbnails and then its text, the thumbnails in the text's row to its
// left, after everything else (so the last text of a name is its entry).
func (s SVG) legend() map[string]swatch {
	out := map[string]swatch{}
	for i, e := range s.elems {
		if !e.text || e.size == 0 {
			continue
		}
		w := swatch{line: -1, glyph: -1, bar: -1, s: &s}
		for j := i - 1; j >= 0; j-- {
			p := s.elems[j]
			if p.text || len(p.pts) == 0 {
				break
			}
			minX, minY, maxX, maxY := p.bounds()
			cy := (minY + maxY) / 2
			if maxX > e.x || minX < e.x-4*e.size || cy < e.y-e.size/2 || cy > e.y+e.size {
				break
			}
			w.paths = append(w.paths, j)
			// A line, a bar or a glyph, which may take several
			// paths: the first one drawn stands for it.
			switch wide := maxX-minX > e.size; {
			case wide && maxY-minY < 0.01:
				w.line = j
			case wide:
				w.bar = j
			default:
				w.glyph = j
			}
		}
		if len(w.paths) > 0 {
			out[strings.TrimSpace(e.content)] = w
		}
	}
	return out
}

// sameGlyph reports whether a path is (the first path of) the glyph g drawn
// elsewhere: the same style, commands and shape.
func sameGlyph(e, g element) bool {
	if e.style != g.style || e.cmds != g.cmds || len(e.pts) != len(g.pts) {
		return false
	}
	const eps = 0.05
	for k := range e.pts {
		dx := (e.pts[k].x - e.pts[0].x) - (g.pts[k].x - g.pts[0].x)
		dy := (e.pts[k].y - e.pts[0].y) - (g.pts[k].y - g.pts[0].y)
		if math.Abs(dx) > eps || math.Abs(dy) > eps {
			return false
		}
	}
	return true
}
