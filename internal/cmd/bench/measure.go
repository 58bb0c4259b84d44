package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// caller makes one call; it is what a setup hands to the measurements.
type caller func(ctx context.Context) error

// setup builds a client/server pair and returns its caller and a cleanup.
type setup func() (caller, func(), error)

// result is one measurement of one setup.
type result struct {
	calls     int
	perSecond float64
	p50, p99  time.Duration
	allocs    float64 // heap allocations per call, client and server together
	bytes     float64 // heap bytes per call
}

// measure runs call from inFlight goroutines for d (after a warm-up) and
// records every call's latency and the process's allocations per call.
func measure(call caller, inFlight int, d time.Duration) (result, error) {
	ctx := context.Background()
	for range 200 { // warm-up: connections, pools, lazy init
		if err := call(ctx); err != nil {
			return result{}, err
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	lat := make([][]time.Duration, inFlight)
	errs := make([]error, inFlight)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Go(func() {
			l := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := call(ctx); err != nil {
					errs[g] = err
					return
				}
				l = append(l, time.Since(t0))
			}
			lat[g] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	for _, err := range errs {
		if err != nil {
			return result{}, err
		}
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return result{}, fmt.Errorf("no call completed")
	}
	slices.Sort(all)
	n := float64(len(all))
	// The latency slices themselves allocate a few times per goroutine; negligible per call.
	return result{
		calls:     len(all),
		perSecond: n / elapsed.Seconds(),
		p50:       all[len(all)/2],
		p99:       all[len(all)*99/100],
		allocs:    float64(after.Mallocs-before.Mallocs) / n,
		bytes:     float64(after.TotalAlloc-before.TotalAlloc) / n,
	}, nil
}
