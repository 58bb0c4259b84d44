// Package chart draws small time-series charts as inline SVG for the kit's
// admin pages: lines over a time axis, state bands, and vertical marks for
// events. The output needs no script and no font: its colors are CSS
// classes that the page styles (currentColor for axes and text, so it reads
// in light and dark mode), and it carries the scales as data attributes so
// that tests can turn its coordinates back into values.
package chart
