// Command bench measures grpckit's per-call cost against bare grpc-go in the
// same run (`make bench`): unary SayHello with a 1-byte payload over
// loopback, sequential and 64 in flight; latency p50/p99, calls/s and heap
// allocations per call (client and server together), with ratios to bare.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"time"
)

func main() {
	d := flag.Duration("duration", 2*time.Second, "length of one measurement")
	rounds := flag.Int("rounds", 3, "measurements per setup; the median is reported")
	only := flag.String("only", "", "measure only setups whose name matches this regular expression (bare grpc-go always runs)")
	flag.Parse()
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -only:", err)
		os.Exit(2)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	host, _ := os.Hostname()
	fmt.Printf("bench: %s/%s, %d CPUs, %s, host %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), host)
	var ss []named
	for i, s := range setups() {
		if i == 0 || re.MatchString(s.name) {
			ss = append(ss, s)
		}
	}
	if err := chainTable(ss, *d, *rounds); err != nil {
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
	baseAllocs, err := measureAllocs(ss[0].s)
	if err != nil {
		return err
	}
	// One in flight: each setup interleaved call by call with bare grpc-go,
	// so both see the same moment of a noisy machine.
	fmt.Printf("## unary, 1-byte payload, 1 in flight: each setup interleaved call by call with bare grpc-go (median of %d runs of %v)\n\n", rounds, d)
	fmt.Println("| setup | p50 | p99 | bare p50 in the same run | p50 vs bare | allocs/call | extra allocs/call |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range ss[1:] {
		var runs []pairRun
		for range rounds {
			r, err := runPair(ss[0].s, s.s, 1, d)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b pairRun) int { return cmp.Compare(a.ratio(), b.ratio()) })
		r := runs[len(runs)/2]
		allocs, err := measureAllocs(s.s)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Printf("| %s | %v | %v | %v | %.2fx | %.1f | %+.1f |\n", s.name, r.cand.p50.Round(time.Microsecond/10),
			r.cand.p99.Round(time.Microsecond/10), r.base.p50.Round(time.Microsecond/10), r.ratio(), allocs, allocs-baseAllocs)
	}
	fmt.Printf("\nbare grpc-go: %.1f allocs/call.\n\n", baseAllocs)

	// 64 in flight saturates the machine: interleaved calls would share one
	// queue and hide the difference, so each setup runs alone, in adjacent
	// pairs with bare grpc-go (taking turns at going first), and the ratios
	// are medians over the pairs.
	const inFlight = 64
	fmt.Printf("## unary, 1-byte payload, %d in flight: each setup alone, in adjacent runs with bare grpc-go (median over %d pairs of %v runs)\n\n", inFlight, rounds, d)
	fmt.Println("| setup | p50 | p99 | calls/s | p50 vs bare | calls/s vs bare | CPU/call | CPU/call vs bare |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range ss[1:] {
		type sep struct {
			l          latency
			rate       float64
			cpu        time.Duration
			p50, r, cr float64
		}
		var rs []sep
		for i := range rounds {
			var b, c sep
			var err error
			order := []bool{false, true}
			if i%2 == 1 {
				order = []bool{true, false}
			}
			for _, isCand := range order {
				st := ss[0].s
				if isCand {
					st = s.s
				}
				var x sep
				if x.l, x.rate, x.cpu, err = runAlone(st, inFlight, d); err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				if isCand {
					c = x
				} else {
					b = x
				}
			}
			c.p50, c.r, c.cr = float64(c.l.p50)/float64(b.l.p50), c.rate/b.rate, float64(c.cpu)/float64(b.cpu)
			rs = append(rs, c)
		}
		med := func(f func(sep) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		slices.SortFunc(rs, func(a, b sep) int { return cmp.Compare(a.p50, b.p50) })
		m := rs[len(rs)/2]
		fmt.Printf("| %s | %v | %v | %.0f | %.2fx | %.2fx | %v | %.2fx |\n", s.name, m.l.p50.Round(time.Microsecond/10), m.l.p99.Round(time.Microsecond/10),
			m.rate, med(func(x sep) float64 { return x.p50 }), med(func(x sep) float64 { return x.r }), m.cpu.Round(100*time.Nanosecond), med(func(x sep) float64 { return x.cr }))
	}
	fmt.Println()
	return nil
}

// runAlone builds a fresh setup and measures it alone.
func runAlone(s setup, inFlight int, d time.Duration) (latency, float64, time.Duration, error) {
	call, cleanup, err := s()
	if err != nil {
		return latency{}, 0, 0, err
	}
	defer cleanup()
	l, rate, cpu, err := alone(call, inFlight, d)
	runtime.GC()
	time.Sleep(200 * time.Millisecond) // let the closed connections go
	return l, rate, cpu, err
}

type pairRun struct{ base, cand latency }

func (r pairRun) ratio() float64 { return float64(r.cand.p50) / float64(r.base.p50) }

// runPair builds fresh base and cand setups and measures them interleaved.
func runPair(base, cand setup, inFlight int, d time.Duration) (pairRun, error) {
	bc, bclean, err := base()
	if err != nil {
		return pairRun{}, err
	}
	defer bclean()
	cc, cclean, err := cand()
	if err != nil {
		return pairRun{}, err
	}
	defer cclean()
	b, c, err := paired(bc, cc, inFlight, d)
	runtime.GC()
	return pairRun{b, c}, err
}

func measureAllocs(s setup) (float64, error) {
	call, cleanup, err := s()
	if err != nil {
		return 0, err
	}
	defer cleanup()
	return allocsPerCall(call, 5000)
}
