package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/registry"
)

// answer is one result of a datacenter's watch.
type answer struct {
	dc  int // index in feeder.names
	set []registry.Instance
	err error
}

// feeder turns the answers of a target's watches, one per datacenter, into
// the states of its ClientConn. Only its run goroutine uses it.
//
// The active datacenter is the first in order whose last set has a passing
// instance, else the first with any instance, else the first that answered
// with a set (an empty one); its set is what cc has. Errors before any
// datacenter has a set are reported to cc, so calls fail with UNAVAILABLE
// instead of waiting for ever; later errors are logged and leave each
// datacenter's last set in place. The first state waits until every
// datacenter ahead of the chosen one answered (with a set or an error),
// and every datacenter when the chosen set has no passing instance, so that
// a client starts where its calls belong: not in dc2 because dc2's watch
// answered before the local one, nor with an empty set while another
// datacenter has instances.
type feeder struct {
	cc      resolver.ClientConn
	service string
	names   []string // the target's datacenters in failover order, the local one first
	logger  *slog.Logger

	sets     [][]registry.Instance // last set of each datacenter
	known    []bool                // the datacenter answered with a set at least once
	answered []bool                // the datacenter answered, with a set or an error
	active   int                   // the datacenter whose set cc has; -1 before the first state
}

func newFeeder(cc resolver.ClientConn, service string, names []string, logger *slog.Logger) *feeder {
	return &feeder{
		cc: cc, service: service, names: names, logger: logger,
		sets:     make([][]registry.Instance, len(names)),
		known:    make([]bool, len(names)),
		answered: make([]bool, len(names)),
		active:   -1,
	}
}

// run follows watchers (one per datacenter, in the order of f.names) until
// ctx is done, then stops them all and returns when their goroutines have.
func (f *feeder) run(ctx context.Context, watchers []registry.Watcher) {
	answers := make(chan answer)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, w := range watchers {
		wg.Go(func() { follow(ctx, i, w, answers) })
	}
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-answers:
			f.take(ctx, a)
		}
	}
}

// follow passes the answers of w, the watch of datacenter dc, to out until
// ctx is done or w stops, and then stops w. Repeated errors are spaced
// (10ms doubling to 1s) in case a Discovery returns them without backing
// off itself.
func follow(ctx context.Context, dc int, w registry.Watcher, out chan<- answer) {
	defer w.Stop()
	var pause time.Duration
	for {
		set, err := w.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, registry.ErrWatcherStopped) {
			return
		}
		select {
		case out <- answer{dc: dc, set: set, err: err}:
		case <-ctx.Done():
			return
		}
		if err == nil {
			pause = 0
			continue
		}
		pause = min(max(2*pause, 10*time.Millisecond), time.Second)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// failover reports whether the target has a failover list.
func (f *feeder) failover() bool { return len(f.names) > 1 }

// take applies one answer and updates cc when the active datacenter or its
// set changed.
func (f *feeder) take(ctx context.Context, a answer) {
	f.answered[a.dc] = true
	if a.err != nil {
		f.reportError(ctx, a)
	} else {
		f.sets[a.dc], f.known[a.dc] = a.set, true
	}
	next := f.choose()
	switch {
	case next < 0:
		return // no datacenter has a set yet
	case f.active < 0 && !f.settled(next):
		return // a datacenter that may be better has not answered yet
	case next == f.active && (a.dc != next || a.err != nil):
		return // the active datacenter and its set are unchanged
	}
	if f.active >= 0 && next != f.active {
		f.logSwitch(ctx, f.active, next)
	}
	f.active = next
	s := State(f.sets[next])
	if f.failover() {
		s = balancer.SetDatacenters(s, f.names[next], f.names)
	}
	if err := f.cc.UpdateState(s); err != nil {
		f.logger.LogAttrs(ctx, slog.LevelDebug, "balancer rejected resolver state",
			slog.String("service", f.service), slog.Int("endpoints", len(f.sets[next])), slog.Any("error", err))
	}
}

// choose returns the datacenter whose set cc should have: the first in
// order with a passing instance, else the first with any instance, else
// the first with a set (empty), else -1.
func (f *feeder) choose() int {
	withAny, withSet := -1, -1
	for i, set := range f.sets {
		if !f.known[i] {
			continue
		}
		if passing(set) > 0 {
			return i
		}
		if withAny < 0 && len(set) > 0 {
			withAny = i
		}
		if withSet < 0 {
			withSet = i
		}
	}
	if withAny >= 0 {
		return withAny
	}
	return withSet
}

// settled reports whether choosing dc can no longer change with the first
// answer of another datacenter: those ahead of it have answered, and all
// have when dc has no passing instance.
func (f *feeder) settled(dc int) bool {
	if passing(f.sets[dc]) > 0 {
		return !slices.Contains(f.answered[:dc], false)
	}
	return !slices.Contains(f.answered, false)
}

// reportError reports a watch's error to cc while no datacenter has a set,
// and logs it after.
func (f *feeder) reportError(ctx context.Context, a answer) {
	if !slices.Contains(f.known, true) {
		if f.failover() {
			f.cc.ReportError(fmt.Errorf("consul resolver: no instances of %q known yet (datacenter %s): %w", f.service, f.names[a.dc], a.err))
		} else {
			f.cc.ReportError(fmt.Errorf("consul resolver: no instances of %q known yet: %w", f.service, a.err))
		}
		return
	}
	attrs := []slog.Attr{slog.String("service", f.service), slog.Any("error", a.err)}
	if f.failover() {
		attrs = append(attrs, slog.String("datacenter", f.names[a.dc]))
	}
	f.logger.LogAttrs(ctx, slog.LevelWarn, "discovery failing; keeping the last instance set", attrs...)
}

// logSwitch logs the change of active datacenter from one to another: a
// warning while calls are away from the local datacenter, information when
// they come back to it.
func (f *feeder) logSwitch(ctx context.Context, from, to int) {
	level, msg := slog.LevelWarn, "consul resolver: datacenter failover"
	if to == 0 {
		level, msg = slog.LevelInfo, "consul resolver: back in the local datacenter"
	}
	f.logger.LogAttrs(ctx, level, msg,
		slog.String("service", f.service), slog.String("from", f.names[from]), slog.String("to", f.names[to]),
		slog.Int("from_instances", len(f.sets[from])), slog.Int("from_passing", passing(f.sets[from])),
		slog.Int("to_passing", passing(f.sets[to])))
}

// passing returns the number of passing instances in set.
func passing(set []registry.Instance) int {
	n := 0
	for _, in := range set {
		if in.Health == registry.HealthPassing {
			n++
		}
	}
	return n
}
