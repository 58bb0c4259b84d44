package main

import (
	"context"
	"errors"
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
	// cdf is the latency at each of cdfQuantiles.
	cdf []time.Duration
}

// cdfQuantiles are the points of the latency distributions drawn, in
// percent.
var cdfQuantiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 99, 99.5, 99.9}

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
	cdf := make([]time.Duration, len(cdfQuantiles))
	for i, q := range cdfQuantiles {
		cdf[i] = all[min(int(q/100*float64(len(all))), len(all)-1)]
	}
	return latency{calls: len(all), p50: all[len(all)/2], p99: all[len(all)*99/100], mean: sum / time.Duration(len(all)), cdf: cdf}
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

// aloneStats are one setup's figures under load.
type aloneStats struct {
	l    latency
	rate float64       // calls/s
	cpu  time.Duration // process CPU time per call
}

// sliced measures base and cand under the same load, inFlight goroutines
// calling, in alternating slices of d/slices each (taking turns at going
// first), after d/4 of warm-up for each: the machine's drift over a run,
// tens of percent on a shared machine, then hits both alike, where runs of
// d one after the other would each catch a different moment.
func sliced(base, cand caller, inFlight int, d time.Duration, slices int) (b, c aloneStats, err error) {
	ctx := context.Background()
	for _, call := range []caller{base, cand} {
		if _, err := load(ctx, call, inFlight, d/4); err != nil {
			return b, c, err
		}
	}
	type acc struct {
		lat     [][]time.Duration
		elapsed time.Duration
		cpu     time.Duration
	}
	var accs [2]acc
	for i := range 2 * slices {
		k := i % 2
		if (i/2)%2 == 1 {
			k = 1 - k
		}
		call := base
		if k == 1 {
			call = cand
		}
		cpu0, start := cpuTime(), time.Now()
		lat, err := load(ctx, call, inFlight, d/time.Duration(slices))
		accs[k].elapsed += time.Since(start)
		accs[k].cpu += cpuTime() - cpu0
		if err != nil {
			return b, c, err
		}
		accs[k].lat = append(accs[k].lat, lat...)
	}
	out := [2]aloneStats{}
	for k, a := range accs {
		l := summarize(a.lat)
		if l.calls == 0 {
			return b, c, fmt.Errorf("no call completed")
		}
		out[k] = aloneStats{l: l, rate: float64(l.calls) / a.elapsed.Seconds(), cpu: a.cpu / time.Duration(l.calls)}
	}
	return out[0], out[1], nil
}

// load has inFlight goroutines call for d and returns each one's latencies.
func load(ctx context.Context, call caller, inFlight int, d time.Duration) ([][]time.Duration, error) {
	lat := make([][]time.Duration, inFlight)
	errs := make([]error, inFlight)
	deadline := time.Now().Add(d)
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
	return lat, errors.Join(errs...)
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
