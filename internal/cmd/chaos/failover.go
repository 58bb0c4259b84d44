package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/grpckit/grpckit/kit/balancer"
)

// userTarget is the target of this process's user client; its kit_weighted
// balancer is the one the failover scenarios watch.
const userTarget = "consul:///user"

func addrs(insts []*instance) []string {
	out := make([]string, len(insts))
	for i, inst := range insts {
		out[i] = inst.addr
	}
	return out
}

// restart starts inst again (same ports) and waits until it passes.
func (e *env) restart(ctx context.Context, inst *instance) (time.Time, error) {
	if err := inst.start(); err != nil {
		return time.Time{}, err
	}
	return e.waitPassing(ctx, startTimeout, inst)
}

// killOne: SIGKILL one of the 4 user instances under load (GetUser, 1s
// deadline, kit's default chains) and under the write workload (see
// writes.go: no accepted write may be lost or duplicated). The attempts that still reach it are
// seen through a per-attempt grpc.Peer in an interceptor inside the retries.
func killOne(ctx context.Context, e *env) (r result) {
	r.name = "kill-9"
	r.target = fmt.Sprintf("failed calls <= %d (the callers) and no attempt on it later than 1 s after the kill and no write lost or duplicated", e.opts.callers)
	victim := e.users[len(e.users)-1]
	c, err := e.dial(greeterTarget)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	smp := e.startSampler(userTarget)
	defer smp.stop()
	l := e.startLoad(ctx, time.Second, c.getUser)
	defer l.stop()
	w, err := e.startWrites(ctx, r.name)
	if err != nil {
		r.err = err
		return r
	}
	defer w.stop()
	if r.err = e.waitReady(ctx, 10*time.Second, userTarget, addrs(e.users)...); r.err != nil {
		return r
	}
	if r.err = hold(ctx, 2*time.Second); r.err != nil {
		return r
	}

	progress("SIGKILL %s (%s) under load", victim.name, victim.addr)
	killed := time.Now()
	r.fault(killed, "kill -9 "+victim.name)
	if r.err = victim.kill(ctx); r.err != nil {
		return r
	}
	critical, err := e.waitNotPassing(ctx, 20*time.Second, victim)
	if err != nil {
		r.err = err
		return r
	}
	dropped, err := poll(ctx, 5*time.Second, "the resolver dropping "+victim.addr, func(context.Context) (bool, error) {
		_, ok := smp.firstAfter(victim.addr, killed, func(s epSample) bool { return !s.present })
		return ok, nil
	})
	if err != nil {
		r.err = err
		return r
	}
	if r.err = hold(ctx, time.Second); r.err != nil {
		return r
	}
	l.stop()
	r.fromLoad(l)
	r.attempts, r.instances = c.obs, e.users

	after := c.obs.to(victim.addr, killed)
	var last time.Duration
	for _, a := range after {
		last = max(last, a.start.Sub(killed))
	}
	notPicked, ok := smp.firstAfter(victim.addr, killed, func(s epSample) bool { return !s.present || !s.ready })
	if !ok {
		notPicked = dropped
	}
	r.add("attempts on it after the kill", "%d", len(after))
	r.add("last attempt on it", "+%s", ms(last))
	r.add("out of the picker after", "%s", ms(notPicked.Sub(killed)))
	r.add("critical in Consul after", "%s", secs(critical.Sub(killed)))
	r.add("dropped by the resolver after", "%s", secs(dropped.Sub(killed)))
	r.check(r.failed <= int64(e.opts.callers), "%d failed calls > %d", r.failed, e.opts.callers)
	r.check(last <= time.Second, "an attempt reached it %s after the kill", ms(last))
	w.check(ctx, e, &r)

	progress("restarting %s", victim.name)
	if _, err := e.restart(ctx, victim); err != nil {
		r.err = err
	}
	return r
}

// blackHoleDeadline is the callers' deadline in the black-hole and flapping
// scenarios: a stopped instance fails calls only by their deadline.
const blackHoleDeadline = 300 * time.Millisecond

// blackHole: SIGSTOP one of the 4 user instances under load with a 300ms
// deadline; kit_weighted must eject it (5 DEADLINE_EXCEEDED in a row).
func blackHole(ctx context.Context, e *env) (r result) {
	r.name = "black-hole"
	r.target = fmt.Sprintf("ejected within 2 s of SIGSTOP and failed calls <= %d (2 per caller)", 2*e.opts.callers)
	victim := e.users[len(e.users)-2]
	c, err := e.dial(greeterTarget)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	smp := e.startSampler(userTarget)
	defer smp.stop()
	l := e.startLoad(ctx, blackHoleDeadline, c.getUser)
	defer l.stop()
	if r.err = e.waitReady(ctx, 10*time.Second, userTarget, addrs(e.users)...); r.err != nil {
		return r
	}
	if r.err = hold(ctx, 2*time.Second); r.err != nil {
		return r
	}

	progress("SIGSTOP %s (%s) under load, deadline %v", victim.name, victim.addr, blackHoleDeadline)
	stoppedAt := time.Now()
	r.fault(stoppedAt, "SIGSTOP "+victim.name)
	if r.err = victim.signal(syscall.SIGSTOP); r.err != nil {
		return r
	}
	defer victim.signal(syscall.SIGCONT) // whatever happens below
	ejected, err := poll(ctx, 10*time.Second, victim.addr+" ejected", func(context.Context) (bool, error) {
		_, ok := smp.firstAfter(victim.addr, stoppedAt, func(s epSample) bool { return s.state == balancer.StateEjected })
		return ok, nil
	})
	if err != nil {
		r.err = err
		return r
	}
	ejected, _ = smp.firstAfter(victim.addr, stoppedAt, func(s epSample) bool { return s.state == balancer.StateEjected })
	critical, err := e.waitNotPassing(ctx, 20*time.Second, victim)
	if err != nil {
		r.err = err
		return r
	}
	// Keep it stopped until 4s after the ejection (below the 5s ejection
	// time), so that every attempt on it afterwards would be a miss.
	if r.err = hold(ctx, time.Until(ejected.Add(4*time.Second))); r.err != nil {
		return r
	}
	progress("SIGCONT %s", victim.name)
	contAt := time.Now()
	r.fault(contAt, "SIGCONT")
	if r.err = victim.signal(syscall.SIGCONT); r.err != nil {
		return r
	}
	passing, err := e.waitPassing(ctx, 20*time.Second, victim)
	if err != nil {
		r.err = err
		return r
	}
	if r.err = hold(ctx, time.Second); r.err != nil {
		return r
	}
	l.stop()
	r.fromLoad(l)
	r.attempts, r.instances = c.obs, e.users

	// Calls that failed after the ejection plus one deadline were not in
	// flight on it when it was ejected.
	late := 0
	for _, t := range l.failureTimes() {
		if t.After(ejected.Add(blackHoleDeadline + 50*time.Millisecond)) {
			late++
		}
	}
	onIt := c.obs.to(victim.addr, ejected.Add(time.Millisecond))
	onItWhileStopped := 0
	for _, a := range onIt {
		if a.start.Before(contAt) {
			onItWhileStopped++
		}
	}
	r.add("ejected after", "%s", ms(ejected.Sub(stoppedAt)))
	r.add("attempts on it after the ejection while stopped", "%d", onItWhileStopped)
	r.add("failed calls after the ejection", "%d", late)
	r.add("critical in Consul after", "%s", secs(critical.Sub(stoppedAt)))
	r.add("passing again after SIGCONT", "%s", secs(passing.Sub(contAt)))
	r.check(ejected.Sub(stoppedAt) <= 2*time.Second, "ejected only %s after SIGSTOP", ms(ejected.Sub(stoppedAt)))
	r.check(r.failed <= int64(2*e.opts.callers), "%d failed calls > %d", r.failed, 2*e.opts.callers)
	return r
}

// flapping: one user instance alternates 2s stopped (SIGSTOP) and 2s
// running; each time kit_weighted ejects it, for longer (base x times
// ejected), as its Stats show.
func flapping(ctx context.Context, e *env) (r result) {
	r.name = "flapping"
	r.target = "at least 2 ejections each longer than the one before; failed calls <= 2 per caller per ejection (+1)"
	victim := e.users[1]
	c, err := e.dial(greeterTarget)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	smp := e.startSampler(userTarget)
	defer smp.stop()
	l := e.startLoad(ctx, blackHoleDeadline, c.getUser)
	defer l.stop()
	if r.err = e.waitReady(ctx, 10*time.Second, userTarget, addrs(e.users)...); r.err != nil {
		return r
	}
	if r.err = hold(ctx, time.Second); r.err != nil {
		return r
	}

	progress("flapping %s (%s): 2s stopped, 2s running, for %v", victim.name, victim.addr, e.opts.flapFor)
	began := time.Now()
	stopped, cycles := false, 0
	defer func() {
		if stopped {
			victim.signal(syscall.SIGCONT)
		}
	}()
	for time.Since(began) < e.opts.flapFor {
		sig := syscall.SIGSTOP
		if stopped {
			sig = syscall.SIGCONT
		} else {
			cycles++
		}
		if r.err = victim.signal(sig); r.err != nil {
			return r
		}
		if sig == syscall.SIGSTOP {
			r.fault(time.Now(), "stop")
		} else {
			r.fault(time.Now(), "cont")
		}
		stopped = !stopped
		if r.err = hold(ctx, 2*time.Second); r.err != nil {
			return r
		}
	}
	if stopped {
		if r.err = victim.signal(syscall.SIGCONT); r.err != nil {
			return r
		}
		stopped = false
	}
	l.stop()
	r.fromLoad(l)
	r.attempts, r.instances = c.obs, e.users

	ejs := smp.ejections(victim.addr, began)
	ev := smp.eventsSinceStart()
	lengths := make([]string, len(ejs))
	growing := len(ejs) >= 2
	for i, ej := range ejs {
		lengths[i] = fmt.Sprintf("%s at +%.1fs (times ejected %d)", secs(ej.length), ej.at.Sub(began).Seconds(), ej.timesEjected)
		if i > 0 && ej.length <= ejs[i-1].length {
			growing = false
		}
	}
	r.add("stop cycles", "%d", cycles)
	r.add("ejections", "%d", len(ejs))
	r.add("ejection times", "%s", strings.Join(lengths, " / "))
	r.add("balancer events", "%d ejections %d readmissions %d demotions", ev.Ejections, ev.Readmissions, ev.Demotions)
	r.check(growing, "ejection times do not grow: %s", strings.Join(lengths, " / "))
	limit := int64(2 * e.opts.callers * (len(ejs) + 1))
	r.check(r.failed <= limit, "%d failed calls > %d", r.failed, limit)

	if _, err := e.waitPassing(ctx, 20*time.Second, victim); err != nil {
		r.err = err
	}
	return r
}
