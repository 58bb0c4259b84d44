package figuretest

import (
	"encoding/xml"
	"io"
	"os"
	"strings"
	"testing"
)

// SVG is what a drawn figure holds: every text (title, axis labels, tick
// labels, legend entries, mark labels) and the number of paths (lines,
// point glyphs, bars).
type SVG struct {
	Texts []string
	Paths int
}

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
			}
			switch tok.Name.Local {
			case "text":
				inText = true
				s.Texts = append(s.Texts, "")
			case "path":
				s.Paths++
			}
		case xml.EndElement:
			if tok.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				s.Texts[len(s.Texts)-1] += string(tok)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return s
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
