package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/grpckit/grpckit/kit/balancer"
)

// epSample is what kit_weighted said about one endpoint at one time.
type epSample struct {
	at           time.Time
	present      bool // the resolver lists it
	ready        bool
	state        balancer.EndpointState
	timesEjected int
	ejectedUntil time.Time
}

func (s epSample) same(o epSample) bool {
	return s.present == o.present && s.ready == o.ready && s.state == o.state &&
		s.timesEjected == o.timesEjected && s.ejectedUntil.Equal(o.ejectedUntil)
}

// sampler polls the stats of this process's balancer for one target and
// keeps every change of its endpoints.
type sampler struct {
	mon    *balancer.Monitor
	target string
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	hist   map[string][]epSample // per address, changes only; guarded by mu
	events balancer.EventCounts  // latest; guarded by mu
	first  *balancer.EventCounts // at the first sample; guarded by mu
}

// sampleEvery is the resolution of the sampler's times.
const sampleEvery = 5 * time.Millisecond

func (e *env) startSampler(target string) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{mon: &e.balancers, target: target, cancel: cancel, done: make(chan struct{}), hist: map[string][]epSample{}}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(sampleEvery)
		defer tk.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() {
	s.cancel()
	<-s.done
}

func (s *sampler) sample() {
	now := time.Now()
	ts, ok := targetStats(s.mon, s.target)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = ts.Events
	if s.first == nil {
		ev := ts.Events
		s.first = &ev
	}
	seen := map[string]bool{}
	for _, ep := range ts.Endpoints {
		seen[ep.Addresses] = true
		s.addLocked(ep.Addresses, epSample{
			at: now, present: true, ready: ep.Ready, state: ep.State,
			timesEjected: ep.TimesEjected, ejectedUntil: ep.EjectedUntil,
		})
	}
	for addr, h := range s.hist {
		if !seen[addr] && h[len(h)-1].present {
			s.addLocked(addr, epSample{at: now})
		}
	}
}

func (s *sampler) addLocked(addr string, smp epSample) {
	h := s.hist[addr]
	if len(h) > 0 && h[len(h)-1].same(smp) {
		return
	}
	s.hist[addr] = append(h, smp)
}

// firstAfter returns the time of the first sample of addr at or after t
// that satisfies pred.
func (s *sampler) firstAfter(addr string, t time.Time, pred func(epSample) bool) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, smp := range s.hist[addr] {
		if !smp.at.Before(t) && pred(smp) {
			return smp.at, true
		}
	}
	return time.Time{}, false
}

// ejection is one ejection of an endpoint as sampled.
type ejection struct {
	at           time.Time     // first sample showing it ejected
	length       time.Duration // ejectedUntil - at
	timesEjected int
}

// ejections returns every ejection of addr seen at or after t.
func (s *sampler) ejections(addr string, t time.Time) []ejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ejection
	var last time.Time
	for _, smp := range s.hist[addr] {
		if smp.at.Before(t) || smp.state != balancer.StateEjected || smp.ejectedUntil.Equal(last) {
			continue
		}
		last = smp.ejectedUntil
		out = append(out, ejection{at: smp.at, length: smp.ejectedUntil.Sub(smp.at), timesEjected: smp.timesEjected})
	}
	return out
}

// droppedAddrs lists the endpoints the sampler saw leave the resolver's set
// at or after t.
func (s *sampler) droppedAddrs(t time.Time) []string {
	s.mu.Lock()
	var out []string
	for addr, h := range s.hist {
		for _, smp := range h {
			if !smp.at.Before(t) && !smp.present {
				out = append(out, addr)
				break
			}
		}
	}
	s.mu.Unlock()
	sort.Strings(out)
	return out
}

// eventsSinceStart returns how the balancer's event counters grew since
// the sampler's first sample.
func (s *sampler) eventsSinceStart() balancer.EventCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		return balancer.EventCounts{}
	}
	return balancer.EventCounts{
		Demotions:    s.events.Demotions - s.first.Demotions,
		Restorations: s.events.Restorations - s.first.Restorations,
		Ejections:    s.events.Ejections - s.first.Ejections,
		Readmissions: s.events.Readmissions - s.first.Readmissions,
		Panics:       s.events.Panics - s.first.Panics,
	}
}

// targetStats returns the stats of the one kit_weighted balancer of mon for
// target.
func targetStats(mon *balancer.Monitor, target string) (balancer.TargetStats, bool) {
	for _, ts := range mon.Stats() {
		if ts.Target == target {
			return ts, true
		}
	}
	return balancer.TargetStats{}, false
}

// waitReady waits until this process's balancer for target has every one
// of addrs READY and active.
func (e *env) waitReady(ctx context.Context, timeout time.Duration, target string, addrs ...string) error {
	_, err := poll(ctx, timeout, fmt.Sprintf("%d endpoints READY in the balancer of %s", len(addrs), target), func(context.Context) (bool, error) {
		ts, ok := targetStats(&e.balancers, target)
		if !ok {
			return false, nil
		}
		ready := map[string]bool{}
		for _, ep := range ts.Endpoints {
			ready[ep.Addresses] = ep.Ready && ep.State == balancer.StateActive
		}
		for _, a := range addrs {
			if !ready[a] {
				return false, nil
			}
		}
		return true, nil
	})
	return err
}
