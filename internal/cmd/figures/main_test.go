package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/grpckit/grpckit/internal/figure/figuretest"
)

// golden is the file that pins kit/internal/figdata's format.
var golden = filepath.Join("..", "..", "..", "kit", "internal", "figdata", "testdata", "charts.json")

func TestDrawGolden(t *testing.T) {
	dir := t.TempDir()
	paths, err := draw(golden, dir)
	if err != nil {
		t.Fatal(err)
	}
	charts, err := read(golden)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(charts) || len(charts) < 3 {
		t.Fatalf("%d files written for %d charts (want 3 or more)", len(paths), len(charts))
	}
	for i, c := range charts {
		if want := filepath.Join(dir, c.Name+".svg"); paths[i] != want {
			t.Errorf("chart %d written to %s, want %s", i, paths[i], want)
		}
		s := figuretest.Read(t, paths[i])
		s.Holds(t, c.Title, c.X.Label)
		for _, ser := range c.Series {
			s.Holds(t, ser.Name)
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
