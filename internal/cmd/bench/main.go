// Command bench measures grpckit's per-call cost against bare grpc-go in the
// same run (`make bench`): unary SayHello with a 1-byte payload over
// loopback, sequential and 64 in flight; latency p50/p99, calls/s and heap
// allocations per call (client and server together), with ratios to bare.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"
)

func main() {
	d := flag.Duration("duration", 2*time.Second, "length of one measurement")
	rounds := flag.Int("rounds", 3, "measurements per setup; the median is reported")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	host, _ := os.Hostname()
	fmt.Printf("bench: %s/%s, %d CPUs, %s, host %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), host)
	if err := chainTable(setups(), *d, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// named is a setup with its row label.
type named struct {
	name string
	s    setup
}

func chainTable(ss []named, d time.Duration, rounds int) error {
	for _, inFlight := range []int{1, 64} {
		fmt.Printf("## unary, 1-byte payload, %d in flight (median of %d runs of %v)\n\n", inFlight, rounds, d)
		fmt.Println("| setup | p50 | p99 | calls/s | allocs/call | p50 vs bare | extra allocs/call |")
		fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		var base result
		for i, s := range ss {
			r, err := medianOf(s.s, inFlight, d, rounds)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if i == 0 {
				base = r
			}
			fmt.Printf("| %s | %v | %v | %.0f | %.1f | %.2fx | %+.1f |\n", s.name, r.p50.Round(time.Microsecond/10),
				r.p99.Round(time.Microsecond/10), r.perSecond, r.allocs, float64(r.p50)/float64(base.p50), r.allocs-base.allocs)
		}
		fmt.Println()
	}
	return nil
}

// medianOf measures a fresh setup rounds times and keeps the run with the
// median p50.
func medianOf(s setup, inFlight int, d time.Duration, rounds int) (result, error) {
	var rs []result
	for range rounds {
		call, cleanup, err := s()
		if err != nil {
			return result{}, err
		}
		r, err := measure(call, inFlight, d)
		cleanup()
		if err != nil {
			return result{}, err
		}
		rs = append(rs, r)
		runtime.GC()
		time.Sleep(200 * time.Millisecond) // let the closed connections go
	}
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if rs[j].p50 < rs[i].p50 {
				rs[i], rs[j] = rs[j], rs[i]
			}
		}
	}
	return rs[len(rs)/2], nil
}

// setups lists the measured configurations, bare grpc-go first.
func setups() []named {
	return []named{{"bare grpc-go", bare}}
}
