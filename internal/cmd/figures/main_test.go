package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/grpckit/grpckit/internal/figure/figuretest"
)

// goldens are the kit module's JSON charts: the file that pins
// kit/internal/figdata's format and the charts each kit command writes for
// known results (their tests keep those files current).
func goldens(t *testing.T) []string {
	kit := filepath.Join("..", "..", "..", "kit", "internal")
	paths, err := filepath.Glob(filepath.Join(kit, "cmd", "*", "testdata", "charts.json"))
	if err != nil {
		t.Fatal(err)
	}
	return append(paths, filepath.Join(kit, "figdata", "testdata", "charts.json"))
}

func TestDrawGoldens(t *testing.T) {
	all := goldens(t)
	for _, want := range []string{"benchoverload", "benchbalancer", "figdata"} {
		found := false
		for _, p := range all {
			found = found || filepath.Base(filepath.Dir(filepath.Dir(p))) == want
		}
		if !found {
			t.Errorf("no charts of %s among %q", want, all)
		}
	}
	for _, golden := range all {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(golden))), func(t *testing.T) { drawGolden(t, golden) })
	}
}

func drawGolden(t *testing.T, golden string) {
	dir := t.TempDir()
	paths, err := draw(golden, dir)
	if err != nil {
		t.Fatal(err)
	}
	charts, err := read(golden)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(charts) || len(charts) == 0 {
		t.Fatalf("%d files written for %d charts", len(paths), len(charts))
	}
	for i, c := range charts {
		if want := filepath.Join(dir, c.Name+".svg"); paths[i] != want {
			t.Errorf("chart %d written to %s, want %s", i, paths[i], want)
		}
		s := figuretest.Read(t, paths[i])
		s.Holds(t, c.Title, c.X.Label)
		s.Holds(t, c.Categories...)
		if c.Categories == nil {
			s.Holds(t, c.Y.Label)
		}
		if s.Background != "#FFFFFF" {
			t.Errorf("%s: background %q, want opaque white", c.Name, s.Background)
		}
		// Each series is drawn with the points (or bars) it has in
		// the JSON: none missing, none empty.
		for _, ser := range c.Series {
			n := len(ser.Points)
			if c.Categories != nil {
				n = len(ser.Values)
			}
			if n == 0 {
				t.Errorf("%s: series %q has no points in %s", c.Name, ser.Name, golden)
			}
			s.HoldsPoints(t, ser.Name, n)
		}
		for _, m := range c.Marks {
			s.Holds(t, m.Label)
		}
	}
}

func TestReadRefusesUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "charts.json")
	if err := os.WriteFile(path, []byte(`[{"name": "a", "title": "A", "colour": "red"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := read(path); err == nil {
		t.Error("read of a chart with an unknown field: no error")
	}
}
