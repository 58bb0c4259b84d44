package main

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to break the user service's table

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// The downstream outage, and how its calls are counted:
//
//   - callers (this process) -> 2 greeters of the scenario's own -> the 4
//     user instances, every call a SayHello with a user id (greeter calls
//     user.GetUser);
//   - the outage: the users table is renamed away in the SQLite file the
//     user instances share. Every GetUser then fails at once with INTERNAL
//     while the instances keep running and passing their (gRPC health)
//     checks: the failing service is up, so every call aimed at it does
//     reach it and is counted by the service itself;
//   - the scenario's greeters retry INTERNAL as well as UNAVAILABLE
//     (-retry.codes), so that both hops retry this outage: the greeter turns
//     the user failure into UNAVAILABLE for the callers, who retry too.
//     Without retry budgets and the retry chain stop, 3 attempts at 2 hops
//     make up to 3^2 = 9 calls on user per call made;
//   - counts: calls made by the load; calls reaching the greeters and user
//     from the servers' own rpc_server_call_duration_seconds histograms on
//     their admin /metrics (every attempt is a call there), scraped before
//     and after. Fresh greeters and a fresh client mean fresh retry budgets.
//
// Phase 1 runs the callers without their circuit breaker, so that only the
// retry layer limits the load: calls on user / calls made must stay within
// the bound derived from the budgets (see amplificationBound). Phase 2 runs
// kit's default chains and only reports.
const (
	ampTag        = "chaos-amp"
	usersTable    = "users"
	renamedTable  = "users_chaos_outage"
	userGetMethod = "user.v1.UserService/GetUser"
	sayHello      = "greeter.v1.GreeterService/SayHello"
)

// amplificationBound is the most calls on user per call made that the retry
// budgets allow over a two-hop chain, for calls made over seconds:
// every call earns each budget ratio tokens, a retry spends one; each
// budget (one in the callers' client, one in each greeter) also refills
// perSecond tokens per second, of which one second's worth can be saved up.
//
//	calls on greeters G <= N(1+ratio) + A      A = perSecond*(seconds+1)
//	calls on user     U <= G(1+ratio) + greeters*A
//	U/N <= (1+ratio)^2 + ((1+ratio) + greeters)*A/N
func amplificationBound(cfg retry.Config, calls int64, seconds float64, greeters int) float64 {
	a := cfg.BudgetMinRetriesPerSecond * (seconds + 1)
	k := 1 + cfg.BudgetRatio
	return k*k + (k+float64(greeters))*a/float64(calls)
}

// ampCounts are the counters scraped from the servers.
type ampCounts struct{ greeterCalls, userCalls, greeterCallsToUser float64 }

func (e *env) ampCounts(ctx context.Context, greeters []*instance) (ampCounts, error) {
	var c ampCounts
	var err error
	if c.greeterCalls, err = countAll(ctx, greeters, serverCalls, map[string]string{"rpc_method": sayHello}); err != nil {
		return c, err
	}
	if c.greeterCallsToUser, err = countAll(ctx, greeters, clientCalls, map[string]string{"rpc_method": userGetMethod}); err != nil {
		return c, err
	}
	c.userCalls, err = countAll(ctx, e.users, serverCalls, map[string]string{"rpc_method": userGetMethod})
	return c, err
}

// ampPhase is one load run during the outage.
type ampPhase struct {
	calls, failed int64
	seconds       float64
	greeterCalls  float64
	userCalls     float64
	greeterOnUser float64
	load          *load // the phase's calls over time, stopped
}

func (e *env) ampPhase(ctx context.Context, name string, greeters []*instance, opts ...kit.ClientOption) (ampPhase, error) {
	var p ampPhase
	before, err := e.ampCounts(ctx, greeters)
	if err != nil {
		return p, err
	}
	c, err := e.dial(greeterTarget+"?tag="+ampTag, opts...)
	if err != nil {
		return p, err
	}
	defer c.close()
	progress("%s: load for %v", name, e.opts.outageFor)
	l := e.startLoad(ctx, time.Second, c.sayHello)
	err = hold(ctx, e.opts.outageFor)
	l.stop()
	if err != nil {
		return p, err
	}
	after, err := e.ampCounts(ctx, greeters)
	if err != nil {
		return p, err
	}
	p = ampPhase{
		calls: l.calls.Load(), failed: l.failed.Load(), seconds: l.duration().Seconds(),
		greeterCalls:  after.greeterCalls - before.greeterCalls,
		userCalls:     after.userCalls - before.userCalls,
		greeterOnUser: after.greeterCallsToUser - before.greeterCallsToUser,
		load:          l,
	}
	progress("%s: %d calls (%d failed) -> %.0f on greeters -> %.0f on user (greeters' own count of their calls to user, retries not counted: %.0f)%s",
		name, p.calls, p.failed, p.greeterCalls, p.userCalls, p.greeterOnUser, l.failures())
	return p, nil
}

func downstreamOutage(ctx context.Context, e *env) (r result) {
	r.name = "downstream-outage"
	cfg := retry.DefaultConfig()
	r.target = fmt.Sprintf("calls on user per call made <= (1+%.2g)^2 + the budgets' %.3g retries/s (retries only; callers' breaker off)",
		cfg.BudgetRatio, cfg.BudgetMinRetriesPerSecond)

	var greeters []*instance
	defer func() {
		for _, g := range greeters {
			g.terminate(context.WithoutCancel(ctx), 10*time.Second)
		}
	}()
	for i := 1; i <= numGreeters; i++ {
		g, err := e.sup.newInstance("greeter", fmt.Sprintf("greeter-amp-%d", i), e.agent.HTTPAddr(),
			"-registry.tags", ampTag, "-retry.codes", "UNAVAILABLE,INTERNAL")
		if err != nil {
			r.err = err
			return r
		}
		if r.err = g.start(); r.err != nil {
			return r
		}
		greeters = append(greeters, g)
	}
	if _, r.err = e.waitPassing(ctx, startTimeout, greeters...); r.err != nil {
		return r
	}

	db, err := sql.Open("sqlite", e.db+"?_busy_timeout=5000")
	if err != nil {
		r.err = err
		return r
	}
	defer db.Close()
	progress("outage: renaming the users table away in %s", e.db)
	if _, r.err = db.ExecContext(ctx, "ALTER TABLE "+usersTable+" RENAME TO "+renamedTable); r.err != nil {
		return r
	}
	renamed := true
	defer func() {
		if renamed {
			db.ExecContext(context.WithoutCancel(ctx), "ALTER TABLE "+renamedTable+" RENAME TO "+usersTable)
		}
	}()

	p1, err := e.ampPhase(ctx, "retries only (callers' breaker off)", greeters, kit.WithoutLayers(kit.LayerBreaker))
	if err != nil {
		r.err = err
		return r
	}
	r.load = p1.load // the chart: the measured phase, user failing throughout
	r.fault(p1.load.start, "user failing")
	p2, err := e.ampPhase(ctx, "kit's default chains", greeters)
	if err != nil {
		r.err = err
		return r
	}

	progress("outage over: renaming the table back")
	if _, r.err = db.ExecContext(ctx, "ALTER TABLE "+renamedTable+" RENAME TO "+usersTable); r.err != nil {
		return r
	}
	renamed = false
	healed, err := e.healthyAgain(ctx)
	if err != nil {
		r.err = err
		return r
	}

	r.calls, r.failed = p1.calls, p1.failed
	amp := p1.userCalls / float64(p1.calls)
	bound := amplificationBound(cfg, p1.calls, p1.seconds, len(greeters))
	r.add("calls on greeters", "%.0f", p1.greeterCalls)
	r.add("calls on user", "%.0f", p1.userCalls)
	r.add("amplification", "%.3f", amp)
	r.add("bound", "%.3f", bound)
	r.add("without budgets and chain stop", "up to %.0f", math.Pow(float64(cfg.MaxAttempts), 2))
	r.add("with the callers' breaker (default chains)", "%d calls -> %.0f on user = %.3f", p2.calls, p2.userCalls, p2.userCalls/float64(max(p2.calls, 1)))
	r.add("healthy again after the table is back", "%s", ms(healed))
	r.check(p1.calls > 0 && amp <= bound, "amplification %.3f > bound %.3f", amp, bound)
	r.check(p1.userCalls >= float64(p1.calls), "only %.0f calls reached user for %d calls made: the outage was not measured", p1.userCalls, p1.calls)
	return r
}

// healthyAgain waits until a direct GetUser succeeds, returning how long
// that took.
func (e *env) healthyAgain(ctx context.Context) (time.Duration, error) {
	c, err := e.dial(greeterTarget)
	if err != nil {
		return 0, err
	}
	defer c.close()
	start := time.Now()
	_, err = poll(ctx, 15*time.Second, "GetUser succeeding again", func(ctx context.Context) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return c.getUser(cctx, 0) == nil, nil
	})
	return time.Since(start), err
}
