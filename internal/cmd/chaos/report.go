package main

import (
	"fmt"
	"strings"
	"time"
)

// result is what a scenario found.
type result struct {
	name    string
	calls   int64
	failed  int64
	figures []figure
	target  string   // what must hold, in words
	missed  []string // each target missed, in words
	err     error    // the scenario could not run to the end

	load  *load  // the scenario's load, for its chart
	marks []mark // the faults, for its chart

	// attempts and instances, when set, add a chart of each instance's
	// share of the attempts over the load's time.
	attempts  *observer
	instances []*instance
}

// mark is a fault of a scenario at a time: a kill, a stop, an outage.
type mark struct {
	at    time.Time
	label string
}

// fault records a fault at time at, marked on the scenario's chart.
func (r *result) fault(at time.Time, label string) {
	r.marks = append(r.marks, mark{at, label})
}

type figure struct{ key, value string }

// add appends a figure; values must not contain ", ".
func (r *result) add(key, format string, args ...any) {
	r.figures = append(r.figures, figure{key, fmt.Sprintf(format, args...)})
}

// check records a missed target unless ok.
func (r *result) check(ok bool, format string, args ...any) {
	if !ok {
		r.missed = append(r.missed, fmt.Sprintf(format, args...))
	}
}

// fromLoad takes the call counts of l, which must be stopped.
func (r *result) fromLoad(l *load) {
	r.load = l
	r.calls, r.failed = l.calls.Load(), l.failed.Load()
	if r.failed > 0 {
		progress("%s: %d failed calls:%s", r.name, r.failed, l.failures())
	}
}

func (r result) held() bool { return r.err == nil && len(r.missed) == 0 }

// line is the scenario's summary line.
func (r result) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario: %s, calls: %d, failed calls: %d", r.name, r.calls, r.failed)
	for _, f := range r.figures {
		fmt.Fprintf(&b, ", %s: %s", f.key, f.value)
	}
	fmt.Fprintf(&b, ", target: %s", r.target)
	switch {
	case r.err != nil:
		fmt.Fprintf(&b, ", verdict: ERROR (%s)", oneLine(r.err.Error()))
	case len(r.missed) > 0:
		fmt.Fprintf(&b, ", verdict: MISSED (%s)", strings.Join(r.missed, "; "))
	default:
		b.WriteString(", verdict: held")
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// ms formats d in milliseconds, s in seconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
func secs(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// failureWindow says when the failed calls ended, relative to ref.
func failureWindow(times []time.Time, ref time.Time) string {
	if len(times) == 0 {
		return "none"
	}
	first, last := times[0], times[0]
	for _, t := range times {
		if t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return fmt.Sprintf("%+.1f s to %+.1f s", first.Sub(ref).Seconds(), last.Sub(ref).Seconds())
}
