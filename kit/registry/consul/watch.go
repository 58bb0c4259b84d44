package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/internal/consulq"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul/internal"
)

// Watch follows the healthy instances of name through blocking queries on
// /v1/health/service/:name. See the package documentation for the rules.
func (r *Registry) Watch(ctx context.Context, name string, opts ...registry.WatchOption) (registry.Watcher, error) {
	if name == "" {
		return nil, errors.New("consul: watch: empty service name")
	}
	ctx, cancel := context.WithCancel(ctx)
	return &watcher{
		r:      r,
		name:   name,
		o:      registry.NewWatchOptions(opts...),
		ctx:    ctx,
		cancel: cancel,
		bo:     consulq.Backoff{Base: r.opts.backoffBase, Max: r.opts.backoffMax},
	}, nil
}

type watcher struct {
	r      *Registry
	name   string
	o      registry.WatchOptions
	ctx    context.Context // done when the watch ends
	cancel context.CancelFunc

	// Loop state, touched only by Next (which is not called concurrently).
	index   uint64              // index for the next blocking query
	pause   time.Duration       // wait before the next query: rate limit or backoff
	bo      consulq.Backoff     // delays after failed queries
	failing bool                // whether the last query failed
	doubt   time.Time           // until then, an empty answer after a set is held back (see Next)
	held    bool                // an empty answer is held back until doubt
	last    []registry.Instance // set returned last
	sent    bool                // whether a set was returned yet
}

func (w *watcher) Stop() { w.cancel() }

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.ctx, cancel)()
	for {
		if w.held && !time.Now().Before(w.doubt) {
			// The grace ended while the catalog was still empty: report it
			// now rather than after another blocking query, which would
			// wait for a change that may never come.
			return w.report(nil), nil
		}
		if err := internal.Sleep(ctx, w.pause); err != nil {
			return nil, w.ctxErr(ctx)
		}
		start := time.Now()
		wait := w.r.opts.waitTime
		if rest := time.Until(w.doubt); rest > 0 && rest < wait {
			wait = max(rest, 10*time.Millisecond) // answer by the end of the doubt
		}
		// A stale read is answered by any server: the watch goes on while the
		// servers elect a new leader.
		q := &api.QueryOptions{Datacenter: w.o.Datacenter, WaitIndex: w.index, WaitTime: wait, AllowStale: true}
		qctx, cancel := context.WithTimeout(ctx, consulq.QueryTimeout(w.index != 0, wait, w.r.opts.answerTimeout))
		entries, meta, err := w.r.client.Health().Service(w.name, w.o.Tag, false, q.WithContext(qctx))
		cancel()
		if ctx.Err() != nil {
			return nil, w.ctxErr(ctx)
		}
		err = consulq.ACL(err, fmt.Sprintf("service:read on %q and node:read", w.name))
		if err == nil && meta.ResultsFilteredByACLs && len(entries) == 0 {
			// Not "service gone": the token may not read it (expired, rotated).
			err = fmt.Errorf("%w: every instance of %q was filtered out by ACLs; the token lacks service:read on it (or node:read on its nodes)",
				ErrACLRefused, w.name)
		}
		if err == nil && len(entries) == 0 && !w.r.tokenOK.Load() {
			// An empty answer may be all an unknown token gets to see:
			// ask Consul about the token once before reporting it.
			if cerr := w.r.CheckToken(ctx); errors.Is(cerr, ErrACLRefused) {
				err = cerr
			}
		}
		if err != nil {
			w.pause = w.bo.Next()
			w.index = consulq.IndexAfterError
			if w.failing {
				continue
			}
			w.failing = true
			w.r.opts.logger.LogAttrs(ctx, slog.LevelWarn, "consul watch failing; keeping the last set",
				slog.String("name", w.name), slog.Any("error", err))
			return nil, fmt.Errorf("consul: watch %q: %w", w.name, err)
		}
		if w.failing || meta.LastIndex < w.index && w.index > consulq.IndexAfterError {
			// The agent may be a fresh one (restarted, or its index went
			// backwards) whose catalog fills again as instances re-register.
			w.doubt = time.Now().Add(w.r.opts.restartGrace)
		}
		if w.failing {
			w.r.opts.logger.LogAttrs(ctx, slog.LevelInfo, "consul watch recovered", slog.String("name", w.name))
		}
		w.failing = false
		w.bo.Reset()
		w.index = consulq.NextIndex(w.index, meta.LastIndex)
		w.pause = w.r.opts.minInterval - time.Since(start)

		set := instances(entries, w.name, w.r.opts.logger)
		w.held = false
		if w.sent && registry.EqualSets(set, w.last) {
			continue
		}
		if len(set) == 0 && len(w.last) > 0 && time.Now().Before(w.doubt) {
			// An empty catalog right after a failure or an index reset is
			// most likely a restarted agent that has not seen its instances
			// re-register yet: keep the last set until they do, or until
			// the grace period ends with the service still empty.
			w.held = true
			continue
		}
		return w.report(set), nil
	}
}

// report makes set the last one returned and returns it.
func (w *watcher) report(set []registry.Instance) []registry.Instance {
	w.doubt, w.held = time.Time{}, false
	w.last, w.sent = set, true
	return set
}

// queryTimeout bounds one query (see [consulq.QueryTimeout]).
func (r *Registry) queryTimeout(blocking bool) time.Duration {
	return consulq.QueryTimeout(blocking, r.opts.waitTime, r.opts.answerTimeout)
}

// ctxErr tells a stopped watcher from a cancelled call.
func (w *watcher) ctxErr(ctx context.Context) error {
	if w.ctx.Err() != nil {
		return registry.ErrWatcherStopped
	}
	return context.Cause(ctx)
}
