// Package figure draws the results of the bench and chaos commands as SVG
// charts with gonum.org/v1/plot.
//
// A [Chart] is plain data: a title, two labelled axes and named series,
// either lines of (x, y) points or groups of bars, with vertical marks
// (a fault, a spike) on line charts. The root module's commands
// (internal/cmd/bench, internal/cmd/chaos) build charts and call
// [Chart.WriteSVG]. The kit module's commands (benchbalancer,
// benchoverload), which must not depend on a plotting library, write the
// same data as JSON (kit/internal/figdata, whose golden file the tests of
// both packages read) and internal/cmd/figures draws it.
package figure
