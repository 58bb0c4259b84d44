package figdata

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Chart is one figure: see the package comment for its JSON form.
type Chart struct {
	Name       string   `json:"name"`
	Title      string   `json:"title"`
	X          Axis     `json:"x"`
	Y          Axis     `json:"y"`
	Categories []string `json:"categories,omitempty"`
	Series     []Series `json:"series"`
	Marks      []Mark   `json:"marks,omitempty"`
}

// Axis is an axis's label (with the unit), scale and fixed range.
type Axis struct {
	Label string   `json:"label"`
	Log   bool     `json:"log,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// Series is a named line (Points) or set of bars (Values, one per
// category).
type Series struct {
	Name   string    `json:"name"`
	Points []Point   `json:"points,omitempty"`
	Values []float64 `json:"values,omitempty"`
}

// Point is one point of a line.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Mark is a labelled vertical line at X.
type Mark struct {
	X     float64 `json:"x"`
	Label string  `json:"label"`
}

// Bound returns a pointer to v, for [Axis.Min] and [Axis.Max].
func Bound(v float64) *float64 { return &v }

// Write writes charts to path as JSON, creating its directory.
func Write(path string, charts []Chart) error {
	b, err := json.MarshalIndent(charts, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read reads a file written by [Write].
func Read(path string) ([]Chart, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var charts []Chart
	if err := json.Unmarshal(b, &charts); err != nil {
		return nil, fmt.Errorf("figdata: %s: %w", path, err)
	}
	return charts, nil
}
