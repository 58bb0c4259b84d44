package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grpckit/grpckit/kit/internal/figdata"
)

// The charts of the latency and fault scenarios, written as JSON
// (kit/internal/figdata) for internal/cmd/figures to draw; the file names
// are the charts' names.

// cdfQuantiles are the points of a latency distribution, in percent.
var cdfQuantiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 99, 99.5, 99.9}

// latencyCDF is the distribution of the calls' latencies: for each
// quantile, the latency (ms) at or below which that percentage of calls
// ended.
func latencyCDF(name string, calls []call) figdata.Series {
	s := figdata.Series{Name: name}
	if len(calls) == 0 {
		return s
	}
	ls := make([]time.Duration, len(calls))
	for i, c := range calls {
		ls[i] = c.latency
	}
	slices.Sort(ls)
	for _, q := range cdfQuantiles {
		l := ls[min(int(q/100*float64(len(ls))), len(ls)-1)]
		s.Points = append(s.Points, figdata.Point{X: max(float64(l)/float64(time.Millisecond), 0.001), Y: q})
	}
	return s
}

// latencyChart draws one latency distribution per policy.
func latencyChart(name, title string, series []figdata.Series) figdata.Chart {
	return figdata.Chart{
		Name: name, Title: title,
		X: figdata.Axis{Label: "latency (ms, log scale)", Log: true}, Y: figdata.Axis{Label: "calls at or below (%)", Min: figdata.Bound(0), Max: figdata.Bound(100)},
		Series: series,
	}
}

// sharesOverTime is each backend's share (%) of the calls that started in
// each step from from to to, x in seconds after origin. A step without
// calls has no point: a gap in the lines, not a share of 0.
func sharesOverTime(calls []call, addrs, names []string, from, to, step, origin time.Duration) []figdata.Series {
	out := make([]figdata.Series, len(addrs))
	for i := range addrs {
		out[i].Name = names[i]
	}
	for at := from; at < to; at += step {
		w := window(calls, at, at+step)
		if len(w) == 0 {
			continue
		}
		for i, a := range addrs {
			out[i].Points = append(out[i].Points, figdata.Point{X: (at - origin).Seconds(), Y: share(w, a)})
		}
	}
	return out
}

// slowStep is the width of the slow-instance share chart's slices.
const slowStep = 250 * time.Millisecond

// slowSharesChart draws each backend's share over one policy's run of the
// slow-instance scenario (backend-0 40 ms late throughout), from the
// start of the load, the end of the warm-up marked; addrs are the
// backends' addresses, the slow one first.
func slowSharesChart(policy string, calls []call, addrs []string) figdata.Chart {
	return figdata.Chart{
		Name:  "balancer-slow-shares-" + slug(policy),
		Title: policy + ": each backend's share, backend-0 40 ms late",
		X:     figdata.Axis{Label: "time since the load began (s)", Min: figdata.Bound(0)}, Y: figdata.Axis{Label: "share of calls (%)", Min: figdata.Bound(0)},
		Series: sharesOverTime(calls, addrs, backendNames(len(addrs), "(40 ms late)"), 0, warmUp+measure, slowStep, 0),
		Marks:  []figdata.Mark{{X: warmUp.Seconds(), Label: "measured from here"}},
	}
}

// recoveryChart draws each backend's share over time for one policy when
// backend-0 is 40 ms late and then fast again at 0 s.
func recoveryChart(policy string, shares []figdata.Series) figdata.Chart {
	return figdata.Chart{
		Name:  "balancer-recovery-" + slug(policy),
		Title: policy + ": each backend's share, backend-0 40 ms late, then fast again",
		X:     figdata.Axis{Label: "time since backend-0 is fast again (s)"}, Y: figdata.Axis{Label: "share of calls (%)", Min: figdata.Bound(0)},
		Series: shares,
		Marks:  []figdata.Mark{{X: 0, Label: "backend-0 fast again"}},
	}
}

// faultRun is one policy's calls in a fault scenario.
type faultRun struct {
	policy    string
	recs      []record
	bad       string        // the faulty backend's address
	recovered time.Duration // when the fault ended (0: it did not)
	end       time.Duration // when the load stopped, after the fault
}

// faultStep is the width of the fault charts' slices.
const faultStep = 100 * time.Millisecond

// faultCharts draws, for one scenario, the faulty backend's share of calls
// and the failed calls per second over time, one line per policy, the
// fault (and the recovery) marked.
func faultCharts(scenario string, runs []faultRun) []figdata.Chart {
	share := figdata.Chart{
		Name: "balancer-fault-" + slug(scenario) + "-share", Title: scenario + ": calls that reach the faulty backend",
		X: figdata.Axis{Label: "time since the fault (s)"}, Y: figdata.Axis{Label: "share of calls (%)", Min: figdata.Bound(0), Max: figdata.Bound(100)},
	}
	failed := figdata.Chart{
		Name: "balancer-fault-" + slug(scenario) + "-failed", Title: scenario + ": failed calls",
		X: figdata.Axis{Label: "time since the fault (s)"}, Y: figdata.Axis{Label: "failed calls/s", Min: figdata.Bound(0)},
	}
	marks := []figdata.Mark{{X: 0, Label: "fault"}}
	for _, r := range runs {
		sh, fl := figdata.Series{Name: r.policy}, figdata.Series{Name: r.policy}
		// The calls before the fault carry no time (generate records
		// them at -1ns): the lines start at the fault.
		for at := time.Duration(0); at < r.end; at += faultStep {
			var n, bad, failures int
			for _, rec := range r.recs {
				if rec.start < at || rec.start >= at+faultStep {
					continue
				}
				n++
				if rec.peer == r.bad || (rec.peer == "" && rec.err != nil) {
					bad++
				}
				if rec.err != nil {
					failures++
				}
			}
			if n > 0 { // a slice without calls: a gap, not a share of 0
				sh.Points = append(sh.Points, figdata.Point{X: at.Seconds(), Y: 100 * float64(bad) / float64(n)})
			}
			fl.Points = append(fl.Points, figdata.Point{X: at.Seconds(), Y: float64(failures) / faultStep.Seconds()})
		}
		share.Series, failed.Series = append(share.Series, sh), append(failed.Series, fl)
	}
	if len(runs) > 0 && runs[0].recovered > 0 {
		marks = append(marks, figdata.Mark{X: runs[0].recovered.Seconds(), Label: "recovered"})
	}
	share.Marks, failed.Marks = marks, marks
	return []figdata.Chart{share, failed}
}

// slug makes a chart name of a scenario or policy name: "1 of 5 fails 10%
// of calls" → "1-of-5-fails-10-of-calls".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

// backendNames names backends backend-0, backend-1, ..., the first
// described by first.
func backendNames(n int, first string) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("backend-%d", i)
	}
	names[0] += " " + first
	return names
}
