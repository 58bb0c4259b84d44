package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// pollEvery is how often conditions on Consul, the balancers and the admin
// endpoints are checked.
const pollEvery = 20 * time.Millisecond

// poll calls cond every pollEvery until it reports true, returning the time
// it first did. It gives up after timeout or when ctx is done; an error from
// cond ends the wait at once.
func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tk := time.NewTicker(pollEvery)
	defer tk.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return time.Time{}, fmt.Errorf("%s: not within %v", what, timeout)
			}
			return time.Time{}, ctx.Err()
		case <-tk.C:
		}
	}
}

// hold keeps going for d (load keeps running meanwhile), or until ctx is
// done. It is for steady-state periods of a scenario, never for waiting on
// a condition.
func hold(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// passingPorts returns the ports of the instances of svc that pass their
// checks, as the Consul agent sees it now. An unreachable agent is an error.
func (e *env) passingPorts(ctx context.Context, svc string) (map[int]bool, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	entries, _, err := e.consul.Health().Service(svc, "", true, (&api.QueryOptions{}).WithContext(qctx))
	if err != nil {
		return nil, err
	}
	ports := make(map[int]bool, len(entries))
	for _, en := range entries {
		if en.Service != nil && en.Service.Address == "127.0.0.1" {
			ports[en.Service.Port] = true
		}
	}
	return ports, nil
}

// allPassing reports whether every one of insts passes in Consul. An
// unreachable agent counts as "not yet".
func (e *env) allPassing(ctx context.Context, insts []*instance) bool {
	bySvc := map[string]map[int]bool{}
	for _, inst := range insts {
		ports, ok := bySvc[inst.svc]
		if !ok {
			var err error
			if ports, err = e.passingPorts(ctx, inst.svc); err != nil {
				return false
			}
			bySvc[inst.svc] = ports
		}
		if !ports[inst.port] {
			return false
		}
	}
	return true
}

// waitPassing waits until every one of insts passes in Consul, failing early
// when one of them is not running.
func (e *env) waitPassing(ctx context.Context, timeout time.Duration, insts ...*instance) (time.Time, error) {
	return poll(ctx, timeout, "instances passing in Consul", func(ctx context.Context) (bool, error) {
		for _, inst := range insts {
			if err := inst.exitedEarly(); err != nil {
				return false, err
			}
		}
		return e.allPassing(ctx, insts), nil
	})
}

// waitNotPassing waits until inst no longer passes in Consul (critical, or
// gone from the catalog).
func (e *env) waitNotPassing(ctx context.Context, timeout time.Duration, inst *instance) (time.Time, error) {
	return poll(ctx, timeout, inst.name+" leaving Consul's passing set", func(ctx context.Context) (bool, error) {
		ports, err := e.passingPorts(ctx, inst.svc)
		return err == nil && !ports[inst.port], nil
	})
}

// usersInConsul says how many user instances the agent lists (any health).
func (e *env) usersInConsul(ctx context.Context) string {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	entries, _, err := e.consul.Health().Service("user", "", false, (&api.QueryOptions{}).WithContext(qctx))
	if err != nil {
		return "error " + oneLine(err.Error())
	}
	return strconv.Itoa(len(entries))
}
