// Command benchbalancer measures kit_weighted beside grpc-go's round_robin,
// least_request and outlier detection, in one run on one machine (`make
// bench-balancer`):
//
//  1. Pick+Done cost at 5, 100 and 1000 endpoints, from parallel goroutines,
//     with and without load awareness;
//  2. end-to-end throughput over 5 healthy loopback backends;
//  3. slow instances (latency): one backend 40 ms late, its recovery, graded
//     latencies, and weights 1:2:3 at equal latency;
//  4. hedging, over a backend that answers one call in 10 late;
//  5. fault scenarios over 5 loopback backends with faults injected by a
//     server interceptor: client-visible failures, time from the fault to
//     ejection, and the faulty backend's share of calls afterwards.
//
// With -figures DIR it also writes the charts of the latency and fault
// scenarios to DIR/benchbalancer.json (kit/internal/figdata's format),
// which internal/cmd/figures draws as SVG.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "google.golang.org/grpc/balancer/leastrequest" // least_request_experimental
	_ "google.golang.org/grpc/balancer/roundrobin"   // round_robin
	_ "google.golang.org/grpc/xds"                   // outlier_detection_experimental

	_ "github.com/grpckit/grpckit/kit/balancer" // kit_weighted
	"github.com/grpckit/grpckit/kit/internal/figdata"
)

func main() {
	only := flag.String("only", "pick,throughput,scenarios,latency,hedging", "sections to run: pick, throughput, scenarios, latency (or some of its parts: slow, recovery, graded, weights), hedging")
	dur := flag.Duration("throughput-duration", 2*time.Second, "length of one throughput run")
	figures := flag.String("figures", "figures", "directory to write the charts to, as benchbalancer.json for internal/cmd/figures (\"\": none)")
	flag.Parse()
	// kit_weighted logs every state change; the tables report them instead.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	fmt.Printf("benchbalancer: %s\n\n", machine())
	run := func(name string) bool { return strings.Contains(*only, name) }
	var charts []figdata.Chart
	if run("pick") {
		pickTable()
	}
	if run("throughput") {
		if err := throughputTable(*dur); err != nil {
			fmt.Fprintln(os.Stderr, "throughput:", err)
			os.Exit(1)
		}
	}
	if run("latency") || run("slow") || run("recovery") || run("graded") || run("weights") {
		if err := latencyTable(func(name string) bool { return run("latency") || run(name) }, &charts); err != nil {
			fmt.Fprintln(os.Stderr, "latency:", err)
			os.Exit(1)
		}
	}
	if run("hedging") {
		if err := hedgingTable(); err != nil {
			fmt.Fprintln(os.Stderr, "hedging:", err)
			os.Exit(1)
		}
	}
	if run("scenarios") {
		if err := scenarioTable(&charts); err != nil {
			fmt.Fprintln(os.Stderr, "scenarios:", err)
			os.Exit(1)
		}
	}
	if *figures != "" && len(charts) > 0 {
		path := filepath.Join(*figures, "benchbalancer.json")
		if err := figdata.Write(path, charts); err != nil {
			fmt.Fprintln(os.Stderr, "figures:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "benchbalancer: charts in %s\n", path)
	}
}
