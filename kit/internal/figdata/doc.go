// Package figdata is how the kit module's bench commands (benchbalancer,
// benchoverload) hand their results over to be drawn: the kit must not
// depend on a plotting library, so they write their charts as JSON and the
// root module's internal/cmd/figures draws them as SVG (`make
// bench-balancer` and `make bench-overload` run both).
//
// The file is a JSON array of charts:
//
//	[{"name": "overload-levels-goodput",            // the SVG's file name, without .svg
//	  "title": "Goodput against offered load",
//	  "x": {"label": "offered load (calls/s)", "log": false, "min": 0},
//	  "y": {"label": "goodput (calls/s)"},
//	  "series": [{"name": "bare grpc-go", "points": [{"x": 400, "y": 398}, ...]}, ...],
//	  "marks": [{"x": 3, "label": "spike starts"}]},  // vertical lines (optional)
//	 {"name": "...", "categories": ["backend-0", ...],  // a bar chart: one value per category
//	  "series": [{"name": "kit now", "values": [120, 700, 690]}], ...}]
//
// The types mirror internal/figure.Chart field for field; the golden file
// testdata/charts.json is read by the tests of both packages, so neither
// side can change the format alone.
package figdata
