package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// throughputTable compares calls/s over 5 healthy backends with 64 calls in
// flight. Runs come in adjacent pairs, alternating which policy goes first,
// and the ratio reported is the median of the per-pair ratios: run-to-run
// drift on a shared 2-core machine (±10%) cancels out of each pair.
func throughputTable(d time.Duration) error {
	bs, err := startBackends(5)
	if err != nil {
		return err
	}
	defer stopBackends(bs)
	const pairs, inFlight = 11, 64
	var rr, kw, ratios, cpuRatios []float64
	for i := range pairs {
		order := []string{"round_robin", "kit_weighted"}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		got, cpu := map[string]float64{}, map[string]float64{}
		for _, name := range order {
			// Let the previous run's connections close and its garbage go,
			// so that neither policy pays for the other.
			runtime.GC()
			time.Sleep(300 * time.Millisecond)
			rate, cpuPerCall, err := throughput(bs, configOf(name), inFlight, d)
			if err != nil {
				return err
			}
			got[name], cpu[name] = rate, cpuPerCall
		}
		rr, kw = append(rr, got["round_robin"]), append(kw, got["kit_weighted"])
		ratios = append(ratios, got["kit_weighted"]/got["round_robin"])
		cpuRatios = append(cpuRatios, cpu["kit_weighted"]/cpu["round_robin"])
	}
	fmt.Printf("## End-to-end throughput, 5 loopback backends, %d in flight, %d pairs of %v runs\n\n", inFlight, pairs, d)
	fmt.Println("| policy | median calls/s | throughput ratio (median of pairs) | CPU per call ratio (median of pairs) |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	fmt.Printf("| round_robin | %.0f | 1.000x | 1.000x |\n", median(rr))
	fmt.Printf("| kit_weighted | %.0f | %.3fx | %.3fx |\n", median(kw), median(ratios), median(cpuRatios))
	fmt.Println()
	fmt.Print("throughput ratio per pair:")
	for _, r := range ratios {
		fmt.Printf(" %.3f", r)
	}
	fmt.Println()
	fmt.Print("CPU per call ratio per pair:")
	for _, r := range cpuRatios {
		fmt.Printf(" %.3f", r)
	}
	fmt.Println()
	fmt.Println()
	return nil
}

func configOf(name string) string {
	for _, c := range serviceConfigs {
		if c.name == name {
			return c.config
		}
	}
	panic("unknown policy " + name)
}

// throughput runs inFlight callers for d and returns calls/s and the
// process CPU time (user+system) per call.
func throughput(bs []*backend, serviceConfig string, inFlight int, d time.Duration) (float64, float64, error) {
	cc, client, err := dial(bs, serviceConfig, nil)
	if err != nil {
		return 0, 0, err
	}
	defer cc.Close()
	if err := warm(client, bs); err != nil {
		return 0, 0, err
	}
	var calls, failures atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	req := &testpbv1.EchoRequest{Message: "bench"}
	cpu0 := cpuTime()
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := client.Echo(context.Background(), req); err != nil {
					failures.Add(1)
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if f := failures.Load(); f > 0 {
		return 0, 0, fmt.Errorf("%d calls failed over healthy backends", f)
	}
	n := float64(calls.Load())
	return n / elapsed.Seconds(), float64(cpu) / n, nil
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
