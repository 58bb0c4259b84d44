package main

import (
	"context"
	"strings"
	"time"
)

// controlDeadline is the callers' deadline in the scenarios that must fail
// no call: generous, so that a slow moment of a shared machine is not
// mistaken for a failure.
const controlDeadline = 2 * time.Second

// greeterTarget is the target of this process's greeter client.
const greeterTarget = "consul:///greeter"

// mixedLoad dials and starts the two-hop load of the control scenarios:
// half the callers call user directly, half through a greeter. It waits
// until this process's balancers have every instance READY.
func (e *env) mixedLoad(ctx context.Context) (*clients, *load, error) {
	c, err := e.dial(greeterTarget)
	if err != nil {
		return nil, nil, err
	}
	l := e.startLoad(ctx, controlDeadline, c.mixed)
	if err := e.waitReady(ctx, 10*time.Second, userTarget, addrs(e.users)...); err != nil {
		l.stop()
		c.close()
		return nil, nil, err
	}
	if err := e.waitReady(ctx, 10*time.Second, greeterTarget, addrs(e.greeters)...); err != nil {
		l.stop()
		c.close()
		return nil, nil, err
	}
	return c, l, nil
}

func dropFigure(dropped []string) string {
	if len(dropped) == 0 {
		return "none"
	}
	return strings.Join(dropped, " ")
}

// rollingRestart: SIGTERM every instance in turn (4 user, 2 greeter); each
// is started again on its ports and passing in Consul before the next. The
// write workload runs meanwhile: no write may be lost or duplicated.
func rollingRestart(ctx context.Context, e *env) (r result) {
	r.name = "rolling-restart"
	r.target = "0 failed calls and no write lost or duplicated"
	c, l, err := e.mixedLoad(ctx)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	defer l.stop()
	w, err := e.startWrites(ctx, r.name)
	if err != nil {
		r.err = err
		return r
	}
	defer w.stop()
	if r.err = hold(ctx, time.Second); r.err != nil {
		return r
	}
	var longest time.Duration
	began := time.Now()
	for _, inst := range e.fleet() {
		t0 := time.Now()
		r.fault(t0, inst.name)
		if r.err = inst.terminate(ctx, 20*time.Second); r.err != nil {
			return r
		}
		exited := time.Since(t0)
		passing, err := e.restart(ctx, inst)
		if err != nil {
			r.err = err
			return r
		}
		progress("%s: SIGTERM -> exited %v -> passing again %v", inst.name, exited.Round(time.Millisecond), passing.Sub(t0).Round(time.Millisecond))
		longest = max(longest, passing.Sub(t0))
	}
	all := time.Since(began)
	if r.err = hold(ctx, 2*time.Second); r.err != nil {
		return r
	}
	l.stop()
	r.fromLoad(l)
	r.add("instances restarted", "%d", len(e.fleet()))
	r.add("failed attempts (retried or not)", "%d", c.obs.failedSince(began))
	r.add("longest SIGTERM to passing again", "%s", secs(longest))
	r.add("whole rollout", "%s", secs(all))
	r.check(r.failed == 0, "%d failed calls", r.failed)
	w.check(ctx, e, &r)
	return r
}

// consulRestart: restart the Consul agent (same ports, empty catalog)
// under load; kit's registry keepers register every instance again.
func consulRestart(ctx context.Context, e *env) (r result) {
	r.name = "consul-restart"
	r.target = "0 failed calls and every instance registered again within 10 s of the agent being back"
	c, l, err := e.mixedLoad(ctx)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	defer l.stop()
	smp := e.startSampler(userTarget)
	defer smp.stop()
	if r.err = hold(ctx, 2*time.Second); r.err != nil {
		return r
	}
	progress("restarting the Consul agent under load")
	t0 := time.Now()
	r.fault(t0, "agent restart")
	if err := e.agent.Restart(ctx); err != nil {
		e.agentDown = true
		r.err = err
		return r
	}
	back := time.Now()
	atBack := e.usersInConsul(ctx)
	all, err := e.waitPassing(ctx, 30*time.Second, e.fleet()...)
	if err != nil {
		r.err = err
		return r
	}
	progress("agent back after %v; every instance passing again %v later", back.Sub(t0).Round(time.Millisecond), all.Sub(back).Round(time.Millisecond))
	if r.err = l.settle(ctx, 3*time.Second, 20*time.Second); r.err != nil {
		return r
	}
	l.stop()
	r.fromLoad(l)
	r.add("agent down", "%s", secs(back.Sub(t0)))
	r.add("every instance registered again after", "%s", secs(all.Sub(back)))
	r.add("user instances in Consul's first answer after", "%s", atBack)
	r.add("user endpoints dropped by this process's resolver", "%s", dropFigure(smp.droppedAddrs(t0)))
	r.add("failed calls ended (from the agent back)", "%s", failureWindow(l.failureTimes(), back))
	r.add("failed attempts (retried or not)", "%d", c.obs.failedSince(t0))
	r.add("first failed attempt", "%s", c.obs.firstFailed(t0))
	r.check(r.failed == 0, "%d failed calls", r.failed)
	r.check(all.Sub(back) <= 10*time.Second, "re-registration took %s", secs(all.Sub(back)))
	return r
}

// consulOutage: stop the agent for the outage under load (the clients keep
// their last set), then start it again (empty catalog).
func consulOutage(ctx context.Context, e *env) (r result) {
	r.name = "consul-outage"
	r.target = "0 failed calls"
	c, l, err := e.mixedLoad(ctx)
	if err != nil {
		r.err = err
		return r
	}
	defer c.close()
	defer l.stop()
	smp := e.startSampler(userTarget)
	defer smp.stop()
	if r.err = hold(ctx, 2*time.Second); r.err != nil {
		return r
	}
	progress("stopping the Consul agent for %v under load", e.opts.consulOutage)
	t0 := time.Now()
	r.fault(t0, "agent stopped")
	e.agent.Stop()
	e.agentDown = true
	if r.err = hold(ctx, e.opts.consulOutage); r.err != nil {
		return r
	}
	failedDuring := l.failed.Load()
	progress("starting the Consul agent again (%d failed calls so far)", failedDuring)
	t1 := time.Now()
	r.fault(t1, "agent started")
	if err := e.agent.Restart(ctx); err != nil {
		r.err = err
		return r
	}
	e.agentDown = false
	back := time.Now()
	atBack := e.usersInConsul(ctx)
	all, err := e.waitPassing(ctx, 30*time.Second, e.fleet()...)
	if err != nil {
		r.err = err
		return r
	}
	progress("agent back after %v; every instance passing again %v later", back.Sub(t1).Round(time.Millisecond), all.Sub(back).Round(time.Millisecond))
	if r.err = l.settle(ctx, 3*time.Second, 20*time.Second); r.err != nil {
		return r
	}
	l.stop()
	r.fromLoad(l)
	r.add("outage", "%s", secs(t1.Sub(t0)))
	r.add("failed calls during the outage", "%d", failedDuring)
	r.add("every instance registered again after", "%s", secs(all.Sub(back)))
	r.add("user instances in Consul's first answer after", "%s", atBack)
	r.add("user endpoints dropped by this process's resolver", "%s", dropFigure(smp.droppedAddrs(t0)))
	r.add("failed calls ended (from the agent back)", "%s", failureWindow(l.failureTimes(), back))
	r.add("failed attempts (retried or not)", "%d", c.obs.failedSince(t0))
	r.add("first failed attempt", "%s", c.obs.firstFailed(t0))
	r.check(r.failed == 0, "%d failed calls", r.failed)
	return r
}
