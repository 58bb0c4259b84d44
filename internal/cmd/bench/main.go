// Command bench measures grpckit's per-call cost against bare grpc-go in the
// same run (`make bench`): unary calls over loopback, sequential and 64 in
// flight; latency p50/p99, calls/s, CPU and heap allocations per call
// (client and server together), with ratios to the first row of each table.
// Three tables: the cost rule (kit's default chains, and with every call
// traced, against bare grpc-go whose calls carry the same 5s deadline, on
// grpc-go's interop EmptyCall), side by side (raw TCP, bare grpc-go,
// round_robin, outlier detection and kit_weighted over 5 backends, kit's
// default chains; SayHello with a 1-byte payload), and kit's layers one by
// one. With -figures DIR (the default: figures) each table is also drawn
// into DIR: bench-TABLE-latency-1.svg and bench-TABLE-latency-64.svg, the
// latency distribution of every row at 1 and at 64 in flight, and
// bench-TABLE-ratios.svg, the rows' ratios to the base.
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
	"strings"
	"time"
)

func main() {
	d := flag.Duration("duration", 2*time.Second, "length of one measurement")
	rounds := flag.Int("rounds", 3, "measurements per setup; the median is reported")
	costRounds := flag.Int("cost-rounds", 7, "measurements per setup of the cost table, whose ratios are targets")
	only := flag.String("only", "", "measure only rows whose name matches this regular expression (the first row of each table, its base, always runs)")
	figures := flag.String("figures", "figures", "directory to draw each table's charts into (\"\": none)")
	tables := flag.String("tables", "cost,suite,layers", "tables to print: cost (kit's default chains against bare grpc-go with the same deadline), suite (side by side), layers (kit's layers one by one)")
	flag.Parse()
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -only:", err)
		os.Exit(2)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	host, _ := os.Hostname()
	fmt.Printf("bench: %s/%s, %d CPUs, %s, host %s; unary calls over loopback, client and server in this process; median of %d runs of %v\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), host, *rounds, *d)
	pick := func(rows []named) []named {
		out := rows[:1]
		for _, r := range rows[1:] {
			if re.MatchString(r.name) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, t := range strings.Split(*tables, ",") {
		var err error
		var r results
		key := strings.TrimSpace(t)
		switch key {
		case "cost":
			r, err = table("The cost rule: kit's default chains against bare grpc-go with the same deadline (grpc-go's interop EmptyCall)", "base", pick(cost()), *d, *costRounds)
		case "suite":
			r, err = table("Side by side: the floor, bare grpc-go, load-balancing policies over 5 backends, kit's chains (SayHello, 1-byte payload)", "bare", pick(suite()), *d, *rounds)
		case "layers":
			r, err = table("kit's layers one by one (each alone over bare grpc-go), with references for grpc-go's own cost of a deadline and of stats handlers (SayHello, 1-byte payload)", "bare", pick(setups()), *d, *rounds)
		default:
			err = fmt.Errorf("unknown table %q", t)
		}
		if err == nil && *figures != "" {
			err = writeCharts(*figures, r.charts(key))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

// named is a setup with its row label.
type named struct {
	name string
	s    setup
}

// table measures every row against the first (its base) and prints one
// table. One in flight: each row interleaved call by call with the base,
// pairs taking turns at going first, so both see the same moment of a noisy
// machine (calls/s is 1 / mean latency). 64 in flight saturates the machine,
// where interleaved calls would share one queue and hide the difference:
// each row runs alone, in ten alternating slices with the base (after a
// warm-up at that load), with the process CPU time per call. Ratios are
// medians over the rounds; allocations are client and server together.
func table(title, base string, rows []named, d time.Duration, rounds int) (results, error) {
	res := results{title: title, base: rows[0].name}
	first := rows[0]
	baseAllocs, err := measureAllocs(first.s)
	if err != nil {
		return res, err
	}
	fmt.Printf("## %s\n\n", title)
	fmt.Printf("| setup | 1 in flight: p50 | p99 | calls/s | p50 vs %[1]s | 64 in flight: p50 | p99 | calls/s | p50 vs %[1]s | calls/s vs %[1]s | CPU/call vs %[1]s | allocs/call | vs %[1]s |\n", base)
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, row := range rows {
		// 1 in flight, interleaved with bare.
		var seq []pairRun
		for range rounds {
			r, err := runPair(first.s, row.s, 1, d)
			if err != nil {
				return res, fmt.Errorf("%s: %w", row.name, err)
			}
			seq = append(seq, r)
		}
		slices.SortFunc(seq, func(a, b pairRun) int { return cmp.Compare(a.ratio(), b.ratio()) })
		s := seq[len(seq)/2]

		// 64 in flight, in alternating slices with the base.
		const inFlight = 64
		type run struct {
			l          latency
			rate       float64
			cpu        time.Duration
			p50, r, cr float64
		}
		var rs []run
		for range rounds {
			b, c, err := runSliced(first.s, row.s, inFlight, d)
			if err != nil {
				return res, fmt.Errorf("%s: %w", row.name, err)
			}
			rs = append(rs, run{l: c.l, rate: c.rate, cpu: c.cpu,
				p50: float64(c.l.p50) / float64(b.l.p50), r: c.rate / b.rate, cr: float64(c.cpu) / float64(b.cpu)})
		}
		med := func(f func(run) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		slices.SortFunc(rs, func(a, b run) int { return cmp.Compare(a.p50, b.p50) })
		m := rs[len(rs)/2]

		allocs, err := measureAllocs(row.s)
		if err != nil {
			return res, fmt.Errorf("%s: %w", row.name, err)
		}
		res.rows = append(res.rows, rowResult{name: row.name, seq: s.cand, loaded: m.l,
			seqP50: s.ratio(), p50: med(func(x run) float64 { return x.p50 }),
			rate: med(func(x run) float64 { return x.r }), cpu: med(func(x run) float64 { return x.cr })})
		us := func(d time.Duration) string { return d.Round(100 * time.Nanosecond).String() }
		fmt.Printf("| %s | %s | %s | %.0f | %.2fx | %s | %s | %.0f | %.2fx | %.2fx | %.2fx | %.1f | %+.1f |\n", row.name,
			us(s.cand.p50), us(s.cand.p99), 1/s.cand.mean.Seconds(), s.ratio(),
			us(m.l.p50), us(m.l.p99), m.rate, med(func(x run) float64 { return x.p50 }), med(func(x run) float64 { return x.r }), med(func(x run) float64 { return x.cr }),
			allocs, allocs-baseAllocs)
	}
	fmt.Println()
	return res, nil
}

// runSliced builds fresh base and cand setups and measures them in
// alternating slices.
func runSliced(base, cand setup, inFlight int, d time.Duration) (b, c aloneStats, err error) {
	bc, bclean, err := base()
	if err != nil {
		return b, c, err
	}
	defer bclean()
	cc, cclean, err := cand()
	if err != nil {
		return b, c, err
	}
	defer cclean()
	b, c, err = sliced(bc, cc, inFlight, d, 10)
	runtime.GC()
	time.Sleep(200 * time.Millisecond) // let the closed connections go
	return b, c, err
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
