package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	short        bool
	consulOutage time.Duration
	flapFor      time.Duration
	outageFor    time.Duration // scenario 7's load, per phase
	callers      int
	rate         float64
	only         map[string]bool // scenarios to run; empty: all
	keep         bool
	figures      string // where the scenarios' charts go; "" none
}

// scenario is one chaos scenario; run returns its result.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env) result
}

func scenarios() []scenario {
	return []scenario{
		{"kill-9", killOne},
		{"rolling-restart", rollingRestart},
		{"consul-restart", consulRestart},
		{"consul-outage", consulOutage},
		{"black-hole", blackHole},
		{"flapping", flapping},
		{"downstream-outage", downstreamOutage},
		{"consul-leader-loss", leaderLoss},
		{"agent-loss", agentLoss},
		{"datacenter-failover", datacenterFailover},
	}
}

var began = time.Now()

// progress prints a progress line on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos %6.1fs: %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	var only string
	flag.BoolVar(&o.short, "short", false, "shorter runs: a 5s Consul outage, 12s of flapping, 4s of downstream outage")
	flag.DurationVar(&o.consulOutage, "consul-outage", 30*time.Second, "how long the consul-outage scenario keeps the agent stopped (-short: 5s unless set)")
	flag.IntVar(&o.callers, "callers", 8, "concurrent callers of the load")
	flag.Float64Var(&o.rate, "rate", 400, "calls per second of the load, all callers together (0: as fast as they can)")
	flag.StringVar(&only, "run", "", "comma-separated scenarios to run (default all): "+names())
	flag.StringVar(&o.figures, "figures", "", "write each scenario's charts as SVG into this directory: calls and failed calls over time, and in kill-9, black-hole and flapping each user instance's share of the attempts; the faults marked")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (binaries, SQLite file, logs); it is kept anyway when a target is missed")
	flag.Parse()
	o.flapFor, o.outageFor = 24*time.Second, 8*time.Second
	if o.short {
		o.flapFor, o.outageFor = 12*time.Second, 4*time.Second
		if !flagSet("consul-outage") {
			o.consulOutage = 5 * time.Second
		}
	}
	if o.callers < 1 {
		fmt.Fprintln(os.Stderr, "chaos: -callers must be at least 1")
		return 2
	}
	o.only = map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !strings.Contains(","+names()+",", ","+n+",") {
			fmt.Fprintf(os.Stderr, "chaos: unknown scenario %q (have %s)\n", n, names())
			return 2
		}
		o.only[n] = true
	}

	// The first Ctrl-C (or SIGTERM) cancels ctx: the running scenario stops
	// and every child is killed on the way out. After it, signals get their
	// default action again, so a second Ctrl-C ends this process at once
	// (the children then die with it, through their parent-death signal).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	e := &env{}
	keep := o.keep // also kept for a look at the logs when a target was missed
	defer func() { e.close(keep) }()
	if err := setUp(ctx, o, e); err != nil {
		progress("set-up failed: %v", err)
		keep = keep || ctx.Err() == nil
		return 2
	}

	var lines []string
	var failedNames []string
	for i, sc := range scenarios() {
		if len(o.only) > 0 && !o.only[sc.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if err := e.heal(ctx); err != nil {
			progress("cannot restore the fleet before %s: %v", sc.name, err)
			keep = keep || ctx.Err() == nil
			return 1
		}
		progress("scenario %d: %s", i+1, sc.name)
		start := time.Now()
		r := sc.run(ctx, e)
		r.name = sc.name
		line := r.line()
		fmt.Println(line)
		for _, c := range r.charts() {
			if o.figures == "" {
				break
			}
			if path, err := c.WriteSVG(o.figures); err != nil {
				progress("chart of %s: %v", sc.name, err)
			} else {
				progress("chart in %s", path)
			}
		}
		progress("%s done in %v", sc.name, time.Since(start).Round(100*time.Millisecond))
		lines = append(lines, line)
		if !r.held() {
			failedNames = append(failedNames, sc.name)
		}
	}
	if ctx.Err() != nil {
		progress("interrupted; stopping every process")
		return 130
	}
	total := time.Since(began).Round(time.Second)
	if len(failedNames) > 0 {
		keep = true
		fmt.Printf("chaos: targets missed in %d of %d scenarios (%s); total %v\n", len(failedNames), len(lines), strings.Join(failedNames, ", "), total)
		return 1
	}
	fmt.Printf("chaos: every target held in %d scenarios; total %v\n", len(lines), total)
	return 0
}

func names() string {
	var n []string
	for _, sc := range scenarios() {
		n = append(n, sc.name)
	}
	return strings.Join(n, ",")
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
