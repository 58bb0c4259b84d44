// Command figures draws the charts that the kit module's bench commands
// write as JSON (kit/internal/figdata's format) as SVG files, one per
// chart, named after it:
//
//	go run ./internal/cmd/figures -o figures figures/benchoverload.json ...
//
// `make bench-balancer` and `make bench-overload` run it after their
// command. It prints the path of every file written.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/grpckit/grpckit/internal/figure"
)

func main() {
	out := flag.String("o", "figures", "directory the SVG files are written to")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: figures [-o dir] charts.json ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, in := range flag.Args() {
		paths, err := draw(in, *out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "figures:", err)
			os.Exit(1)
		}
		for _, p := range paths {
			fmt.Println(p)
		}
	}
}

// draw draws every chart of the JSON file in into dir and returns the
// files' paths.
func draw(in, dir string) ([]string, error) {
	charts, err := read(in)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, c := range charts {
		p, err := c.WriteSVG(dir)
		if err != nil {
			return paths, fmt.Errorf("%s: %w", in, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// read decodes a JSON array of charts, refusing fields that
// [figure.Chart] does not have: a writer ahead of this reader.
func read(path string) ([]figure.Chart, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var charts []figure.Chart
	if err := dec.Decode(&charts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return charts, nil
}
