// Command benchoverload runs the overload scenarios of kit/internal/overloadsim
// side by side for bare grpc-go, kit before its overload layer and kit now,
// prints their tables, and exits 1 when kit now misses a target
// (make bench-overload; make chaos runs the spike). With -figures DIR it
// also writes the scenarios' charts to DIR/benchoverload.json
// (kit/internal/figdata's format), which internal/cmd/figures draws as SVG.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grpckit/grpckit/kit/internal/figdata"
	sim "github.com/grpckit/grpckit/kit/internal/overloadsim"
)

func main() {
	run := flag.String("run", "levels,halving,three,spike,healthy", "comma-separated scenarios: levels, halving, three, spike, healthy")
	each := flag.Duration("for", 4*time.Second, "how long each level runs")
	figures := flag.String("figures", "figures", "directory to write the charts to, as benchoverload.json for internal/cmd/figures (\"\": none)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.DiscardHandler)) // kit_weighted logs on the default logger when the resolver is not kit's
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	capacity = sim.MeasureCapacity(sim.Slots, sim.Hold, time.Second)
	fmt.Printf("capacity of the resource: %.0f calls/s nominal, %.0f measured on this machine; targets are relative to the measured one, loads to the nominal one\n",
		sim.Capacity, capacity)
	missed := 0
	var charts []figdata.Chart
	for _, name := range strings.Split(*run, ",") {
		var err error
		var m int
		switch strings.TrimSpace(name) {
		case "levels":
			m, err = levels(ctx, *each, &charts)
		case "halving":
			m, err = halving(ctx, &charts)
		case "three":
			m, err = three(ctx, &charts)
		case "spike":
			m, err = spike(ctx, &charts)
		case "healthy":
			m, err = healthy(ctx)
		default:
			err = fmt.Errorf("unknown scenario %q", name)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchoverload:", err)
			os.Exit(2)
		}
		missed += m
	}
	if *figures != "" && len(charts) > 0 {
		path := filepath.Join(*figures, "benchoverload.json")
		if err := figdata.Write(path, charts); err != nil {
			fmt.Fprintln(os.Stderr, "benchoverload:", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "benchoverload: charts in %s\n", path)
	}
	if missed > 0 {
		fmt.Printf("\n%d target(s) missed\n", missed)
		os.Exit(1)
	}
}

// capacity is what the resource serves on this machine.
var capacity float64

// check prints a target's verdict and returns 1 when it is missed.
func check(ok bool, format string, args ...any) int {
	verdict := "ok  "
	if !ok {
		verdict = "MISS"
	}
	fmt.Printf("  %s %s\n", verdict, fmt.Sprintf(format, args...))
	if ok {
		return 0
	}
	return 1
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func table() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 2, 0, 2, ' ', 0) }

func levels(ctx context.Context, each time.Duration, charts *[]figdata.Chart) (int, error) {
	fmt.Printf("\n== Levels: a resource of %d slots × %v (%.0f calls/s), %d clients, %v deadline, %v per cell, open-loop load\n",
		sim.Slots, sim.Hold, sim.Capacity, sim.Callers, sim.Deadline, each)
	res := map[sim.Kind][]sim.Summary{}
	for _, m := range sim.Multiples {
		for _, k := range sim.Kinds {
			s, err := sim.Level(ctx, k, m, each)
			if err != nil {
				return 0, err
			}
			res[k] = append(res[k], s)
		}
	}
	w := table()
	fmt.Fprintln(w, "load\tsetup\tgoodput/s\tx measured capacity\tp50 ok\tp99 ok\tDEADLINE_EXCEEDED\tp99 failed\tleast/most client\tcodes")
	for i, m := range sim.Multiples {
		for _, k := range sim.Kinds {
			s := res[k][i]
			fmt.Fprintf(w, "%.1fx\t%s\t%.0f\t%.2f\t%s\t%s\t%.1f%%\t%s\t%.2f\t%s\n", m, k, s.Goodput, s.Goodput/capacity,
				ms(s.P50), ms(s.P99), 100*s.DeadlineShare(), ms(s.FailP99), s.Share, s.CodesString())
		}
	}
	w.Flush()
	*charts = append(*charts, levelCharts(sim.Multiples, res, capacity)...)
	now, unloaded := res[sim.New], res[sim.New][0].P99
	missed := 0
	for i, m := range sim.Multiples {
		s := now[i]
		switch m {
		case 3:
			missed += check(s.Goodput >= 0.9*capacity, "kit now at 3x: goodput %.0f/s >= 0.9x capacity (%.0f)", s.Goodput, 0.9*capacity)
			missed += check(s.P99 <= 3*unloaded, "kit now at 3x: p99 of OK calls %s <= 3x the unloaded p99 (%s)", ms(s.P99), ms(3*unloaded))
			missed += check(s.DeadlineShare() <= 0.05, "kit now at 3x: %.1f%% of calls DEADLINE_EXCEEDED <= 5%%", 100*s.DeadlineShare())
		case 10:
			missed += check(s.Goodput >= 0.8*capacity, "kit now at 10x: goodput %.0f/s >= 0.8x capacity (%.0f)", s.Goodput, 0.8*capacity)
		}
		if m > 1 {
			missed += check(s.Share >= 0.8, "kit now at %.1fx: every client gets a share of goodput (least/most %.2f >= 0.8)", m, s.Share)
		}
		bare := res[sim.Bare][i]
		missed += check(s.Goodput >= 0.95*bare.Goodput, "kit now at %.1fx: goodput %.0f/s not below bare grpc-go's (%.0f)", m, s.Goodput, bare.Goodput)
	}
	return missed, nil
}

func halving(ctx context.Context, charts *[]figdata.Chart) (int, error) {
	const d, step = 10 * time.Second, 500 * time.Millisecond
	fmt.Printf("\n== Capacity halving: %.0f calls/s offered (2x); at %v each call holds the resource twice as long (capacity %.0f -> %.0f/s)\n",
		2*sim.Capacity, d/2, sim.Capacity, sim.Capacity/2)
	bare, err := sim.Halving(ctx, sim.Bare, d, step)
	if err != nil {
		return 0, err
	}
	now, err := sim.Halving(ctx, sim.New, d, step)
	if err != nil {
		return 0, err
	}
	w := table()
	fmt.Fprintln(w, "t\tbare goodput/s\tbare DE\tkit now goodput/s\tkit now p99 ok\tkit now DE\tkit now limit")
	for i, p := range now {
		b := bare[i].Summary
		fmt.Fprintf(w, "%v\t%.0f\t%.0f%%\t%.0f\t%s\t%.0f%%\t%d\n", p.At, b.Goodput, 100*b.DeadlineShare(),
			p.Summary.Goodput, ms(p.Summary.P99), 100*p.Summary.DeadlineShare(), p.Limit)
	}
	w.Flush()
	*charts = append(*charts, halvingChart(bare, now, d/2))
	// The limit follows: from 2s after the halving, every slice serves at
	// least 0.8x the new capacity with at most 5% DEADLINE_EXCEEDED.
	missed := 0
	for _, p := range now {
		if p.At >= d/2+2*time.Second {
			missed += check(p.Summary.Goodput >= 0.8*capacity/2 && p.Summary.DeadlineShare() <= 0.05,
				"kit now %v (2s+ after halving): goodput %.0f/s >= 0.8x the new capacity, %.1f%% DE <= 5%%",
				p.At, p.Summary.Goodput, 100*p.Summary.DeadlineShare())
		}
	}
	return missed, nil
}

func three(ctx context.Context, charts *[]figdata.Chart) (int, error) {
	const d = 6 * time.Second
	fmt.Printf("\n== Three backends, 1500 calls/s: backend-0 serves %.0f/s, backend-1 and -2 %.0f/s each\n", sim.Capacity/4, sim.Capacity)
	w := table()
	fmt.Fprintln(w, "setup\tgoodput/s\tp99 ok\tDEADLINE_EXCEEDED\tOK from backend-0\tbackend-1\tbackend-2\tcodes")
	var now, bare sim.Spread
	var spreads []sim.Spread
	for _, k := range sim.Kinds {
		s, err := sim.ThreeBackends(ctx, k, d)
		if err != nil {
			return 0, err
		}
		spreads = append(spreads, s)
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%.1f%%\t%d\t%d\t%d\t%s\n", k, s.Summary.Goodput, ms(s.Summary.P99), 100*s.Summary.DeadlineShare(),
			s.OK[0], s.OK[1], s.OK[2], s.Summary.CodesString())
		switch k {
		case sim.New:
			now = s
		case sim.Bare:
			bare = s
		}
	}
	w.Flush()
	*charts = append(*charts, threeChart(sim.Kinds, spreads))
	missed := check(now.Summary.Goodput >= 0.9*1500, "kit now: goodput %.0f/s >= 0.9x the 1500/s offered (the others have room)", now.Summary.Goodput)
	missed += check(now.Summary.Goodput > bare.Summary.Goodput, "kit now: goodput above bare grpc-go's (%.0f/s)", bare.Summary.Goodput)
	return missed, nil
}

func spike(ctx context.Context, charts *[]figdata.Chart) (int, error) {
	const phase = 3 * time.Second
	fmt.Printf("\n== Spike: %.0f calls/s (0.5x) for %v, then %.0f/s (3x) for %v, then 0.5x again\n", sim.Capacity/2, phase, 3*sim.Capacity, phase)
	w := table()
	fmt.Fprintln(w, "setup\tbefore: goodput/s\tspike: goodput/s\tspike: OK calls\tspike: p99 ok\tspike: DE\tafter: goodput/s\tafter: failed\tlast failure after the spike")
	var now sim.SpikeResult
	var results []sim.SpikeResult
	for _, k := range sim.Kinds {
		r, err := sim.Spike(ctx, k, phase)
		if err != nil {
			return 0, err
		}
		results = append(results, r)
		failedAfter := r.After.Calls - r.After.OK
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%d\t%s\t%.1f%%\t%.0f\t%d\t%v\n", k, r.Before.Goodput, r.During.Goodput, r.During.OK,
			ms(r.During.P99), 100*r.During.DeadlineShare(), r.After.Goodput, failedAfter, r.Recovery.Round(time.Millisecond))
		if k == sim.New {
			now = r
		}
	}
	w.Flush()
	*charts = append(*charts, spikeChart(sim.Kinds, results, phase, sim.SpikeRate(phase)))
	missed := check(now.Recovery <= time.Second, "kit now: full service within 1s after the spike (last failure %v after)", now.Recovery.Round(time.Millisecond))
	missed += check(now.During.Goodput >= 0.9*capacity, "kit now: goodput during the spike %.0f/s >= 0.9x capacity", now.During.Goodput)
	return missed, nil
}

func healthy(ctx context.Context) (int, error) {
	const d = 4 * time.Second
	fmt.Printf("\n== Healthy: 2000 calls/s for %v to a server with room for all, whose calls take 1ms, and 50ms one time in ten\n", d)
	w := table()
	fmt.Fprintln(w, "setup\tfirst 500ms: codes\tthen: goodput/s\tp50 ok\tp99 ok\tcodes")
	var rest sim.Summary
	for _, k := range []sim.Kind{sim.Bare, sim.New} {
		warm, r, err := sim.Healthy(ctx, k, d)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%s\t%s\t%s\n", k, warm.CodesString(), r.Goodput, ms(r.P50), ms(r.P99), r.CodesString())
		if k == sim.New {
			rest = r
		}
	}
	w.Flush()
	failed := rest.Calls - rest.OK
	return check(failed <= rest.Calls/200, "kit now: after the first %v, %d of %d calls failed (<= 0.5%%): a healthy server is not held back", sim.HealthyWarmup, failed, rest.Calls), nil
}
