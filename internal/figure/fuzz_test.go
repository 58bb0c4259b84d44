package figure

import (
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzChartSVG: a chart decoded from any JSON (internal/cmd/figures draws
// the kit commands' files) is drawn or refused with an error, never a
// panic, whatever its values (NaN, infinities, bounds the wrong way round,
// empty series).
func FuzzChartSVG(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","title":"t","x":{"label":"x"},"y":{"label":"y"},"series":[{"name":"s","points":[{"x":0,"y":1},{"x":1,"y":2}]}]}`,
		`{"name":"a","title":"t","x":{"label":"x","log":true},"y":{"label":"y","min":5,"max":1},"series":[{"name":"s","points":[{"x":1,"y":1e308}]}],"marks":[{"x":1e300,"label":"m"}]}`,
		`{"name":"b","title":"t","x":{"label":"x"},"categories":["p","q"],"series":[{"name":"s","values":[1,-1]},{"name":"u","values":[0,0]}]}`,
		`{"name":"c","title":"t","x":{"label":"x"},"y":{"label":"y"},"series":[{"name":"s","points":[]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Chart
		if json.Unmarshal(b, &c) != nil {
			return
		}
		n := len(c.Marks) + len(c.Categories)
		for _, s := range c.Series {
			n += len(s.Points) + len(s.Values)
		}
		if n > 2000 {
			return // a size, not a shape, that the fuzzer would only make slow
		}
		if err := c.SVG(io.Discard); errors.Is(err, errDrawPanicked) {
			t.Errorf("Validate let through a chart gonum/plot cannot draw: %v", err)
		}
	})
}
