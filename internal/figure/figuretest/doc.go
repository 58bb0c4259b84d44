// Package figuretest reads back the SVG files that package figure draws,
// for the tests of the commands that write them.
package figuretest
