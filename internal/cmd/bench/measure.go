package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
)

// caller makes one call; it is what a setup hands to the measurements.
type caller func(ctx context.Context) error

// setup builds a client/server pair and returns its caller and a cleanup.
type setup func() (caller, func(), error)

// latency is the latency distribution of one side of a paired run.
type latency struct {
	calls    int
	p50, p99 time.Duration
	mean     time.Duration
}

// paired measures base and cand interleaved: each of inFlight goroutines
// alternates one base call and one cand call for d (taking turns at going
// first), so both see the same
// machine, load and moment; ratios between them are then meaningful even on
// a noisy shared machine, where separate runs drift by tens of percent.
func paired(base, cand caller, inFlight int, d time.Duration) (latency, latency, error) {
	ctx := context.Background()
	for range 200 { // warm-up: connections, pools, lazy init
		if err := base(ctx); err != nil {
			return latency{}, latency{}, err
		}
		if err := cand(ctx); err != nil {
			return latency{}, latency{}, err
		}
	}
	baseLat := make([][]time.Duration, inFlight)
	candLat := make([][]time.Duration, inFlight)
	errs := make([]error, inFlight)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				// Alternate which goes first, so neither pays for the other.
				first, second := base, cand
				if i%2 == 1 {
					first, second = cand, base
				}
				t0 := time.Now()
				if err := first(ctx); err != nil {
					errs[g] = err
					return
				}
				t1 := time.Now()
				if err := second(ctx); err != nil {
					errs[g] = err
					return
				}
				d1, d2 := t1.Sub(t0), time.Since(t1)
				if i%2 == 1 {
					d1, d2 = d2, d1
				}
				baseLat[g] = append(baseLat[g], d1)
				candLat[g] = append(candLat[g], d2)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return latency{}, latency{}, err
		}
	}
	return summarize(baseLat), summarize(candLat), nil
}

func summarize(per [][]time.Duration) latency {
	var all []time.Duration
	for _, l := range per {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return latency{}
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	return latency{calls: len(all), p50: all[len(all)/2], p99: all[len(all)*99/100], mean: sum / time.Duration(len(all))}
}

// allocsPerCall counts the process's heap allocations (client and server
// together) over n sequential calls.
func allocsPerCall(call caller, n int) (float64, error) {
	ctx := context.Background()
	for range 200 {
		if err := call(ctx); err != nil {
			return 0, err
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if err := call(ctx); err != nil {
			return 0, err
		}
	}
	runtime.ReadMemStats(&after)
	if n == 0 {
		return 0, fmt.Errorf("no calls")
	}
	return float64(after.Mallocs-before.Mallocs) / float64(n), nil
}

// alone measures one setup by itself: inFlight goroutines calling it for d;
// it returns the latencies, calls/s and the process CPU time per call.
func alone(call caller, inFlight int, d time.Duration) (latency, float64, time.Duration, error) {
	ctx := context.Background()
	for range 200 {
		if err := call(ctx); err != nil {
			return latency{}, 0, 0, err
		}
	}
	lat := make([][]time.Duration, inFlight)
	errs := make([]error, inFlight)
	cpu0 := cpuTime()
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := call(ctx); err != nil {
					errs[g] = err
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	for _, err := range errs {
		if err != nil {
			return latency{}, 0, 0, err
		}
	}
	l := summarize(lat)
	if l.calls == 0 {
		return l, 0, 0, fmt.Errorf("no call completed")
	}
	return l, float64(l.calls) / elapsed.Seconds(), cpu / time.Duration(l.calls), nil
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
