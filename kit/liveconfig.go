package kit

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"sync"

	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/config"
)

// liveConfig is what kit needs of a config store, whatever its type.
type liveConfig struct {
	current   func() *config.Standard // nil when the config has no standard sections
	subscribe func(func(*config.Standard)) (cancel func())
	info      func() config.Info
}

// WithConfig makes store configure the server or client and keep it up to
// date: the standard sections set the listen and admin addresses, drain and
// shutdown timeout (servers, at start; options such as WithAddress given
// explicitly win, whatever their order),
// and the configuration of the layers kit builds (rate limit, timeouts,
// retry, breaker, access log, telemetry). While the server or client lives,
// every accepted change reaches the layers kit built (layers given as
// objects are left to their owner) and, on clients, the kit_weighted
// balancer's parameters. A server also shows the store at /debug/kit.
//
// On clients kit then owns the service config: it selects kit_weighted with
// the balancer section and replaces one a WithDefaultServiceConfig dial
// option or the target's resolver would give (per-method settings belong in
// the timeout and retry sections).
//
// The configuration type T must embed [config.Standard] inline; NewServer
// and NewClient fail otherwise.
func WithConfig[T any](store *config.Store[T]) Option {
	return configOption{&liveConfig{
		current: store.Standard,
		subscribe: func(f func(*config.Standard)) func() {
			return store.Subscribe(func(snap *config.Snapshot[T]) { f(snap.Standard()) })
		},
		info: store.Info,
	}}
}

type configOption struct{ c *liveConfig }

func (o configOption) applyServer(so *serverOptions) {
	so.config = o.c
	if std := o.c.current(); std != nil {
		so.setServerSection(std.Server)
	}
}

func (o configOption) applyClient(co *clientOptions) { co.config = o.c }

// errNoStandard is returned when WithConfig's type lacks the standard sections.
var errNoStandard = errors.New("kit: WithConfig: the configuration type does not embed config.Standard inline")

// sections returns the standard sections of c, nil when c is nil.
func (c *liveConfig) sections() (*config.Standard, error) {
	if c == nil {
		return nil, nil
	}
	std := c.current()
	if std == nil {
		return nil, errNoStandard
	}
	return std, nil
}

// appliers are the SetConfig calls of the layers kit built, run on every
// configuration change. A nil *appliers applies nothing.
type appliers struct {
	mu sync.Mutex                     // serializes apply (the section closures keep state)
	fs []func(*config.Standard) error // guarded by mu
}

func (a *appliers) add(f func(*config.Standard) error) { a.fs = append(a.fs, f) }

// apply runs every applier, logging failures (a validated configuration
// should never fail one).
func (a *appliers) apply(std *config.Standard, logger *slog.Logger) {
	if a == nil || std == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.fs {
		if err := f(std); err != nil {
			logger.Error("kit: applying a configuration change", "error", err)
		}
	}
}

// follow applies every change of c to live from now on, and the current
// configuration at once (a change made while the layers were being built
// is not lost); the returned cancel stops it.
func (c *liveConfig) follow(live *appliers, logger *slog.Logger) (cancel func()) {
	cancel = c.subscribe(func(std *config.Standard) { live.apply(std, logger) })
	live.apply(c.current(), logger)
	return cancel
}

// followSection returns an applier that calls set with the section pick selects,
// only when that section differs from the one set last (initially
// initial), so that a change elsewhere in the configuration leaves a layer
// and its log alone.
func followSection[C any](initial C, pick func(*config.Standard) C, set func(C) error) func(*config.Standard) error {
	last := initial
	return func(std *config.Standard) error {
		c := pick(std)
		if reflect.DeepEqual(c, last) {
			return nil
		}
		if err := set(c); err != nil {
			return err
		}
		last = c
		return nil
	}
}

// serviceConfigJSON is the service config selecting kit_weighted with c.
func serviceConfigJSON(c balancer.Config) (string, error) {
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("kit: balancer config: %w", err)
	}
	return `{"loadBalancingConfig":[{"` + balancer.Name + `":` + string(b) + `}]}`, nil
}

// schemeOf returns the resolver scheme grpc.NewClient uses for target: the
// target's when a resolver is registered for it, else dns (grpc.NewClient's
// default; a default changed with resolver.SetDefaultScheme is not seen).
func schemeOf(target string) string {
	if u, err := url.Parse(target); err == nil && u.Scheme != "" && resolver.Get(u.Scheme) != nil {
		return u.Scheme
	}
	return "dns"
}

// liveBuilder wraps the resolver of a client's target: every state the
// resolver reports carries the service config made from the current
// balancer section, and a change of the section re-sends the last state
// with the new one, which grpc-go hands to kit_weighted. (A ClientConn that
// goes idle closes its resolver; the next Build starts from the current
// section.) The service config replaces any the target's resolver or a
// WithDefaultServiceConfig dial option would give.
type liveBuilder struct {
	inner  resolver.Builder
	cfg    *liveConfig
	logger *slog.Logger
}

func (b *liveBuilder) Scheme() string { return b.inner.Scheme() }

func (b *liveBuilder) Build(t resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	w := &liveCC{ClientConn: cc, logger: b.logger}
	// Subscribe before reading the current section, so no change is lost.
	cancel := b.cfg.subscribe(func(std *config.Standard) { w.setBalancer(std.Balancer) })
	w.setBalancer(b.cfg.current().Balancer)
	r, err := b.inner.Build(t, w, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	return &liveResolver{Resolver: r, cancel: cancel}, nil
}

type liveResolver struct {
	resolver.Resolver
	cancel func()
}

func (r *liveResolver) Close() {
	r.cancel()
	r.Resolver.Close()
}

// liveCC adds the service config to the states of the wrapped resolver.
type liveCC struct {
	resolver.ClientConn
	logger *slog.Logger

	mu   sync.Mutex      // orders the states sent to grpc; guards sc and last
	sc   string          // service config JSON
	last *resolver.State // last state of the resolver; nil before the first
}

func (c *liveCC) UpdateState(s resolver.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := s
	c.last = &last
	return c.sendLocked(s)
}

func (c *liveCC) sendLocked(s resolver.State) error {
	s.ServiceConfig = c.ClientConn.ParseServiceConfig(c.sc)
	return c.ClientConn.UpdateState(s)
}

// setBalancer makes bc the balancer configuration of later states, and
// re-sends the last state when bc changed it.
func (c *liveCC) setBalancer(bc balancer.Config) {
	sc, err := serviceConfigJSON(bc)
	if err != nil {
		c.logger.Error("kit: balancer config change", "error", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc == c.sc {
		return
	}
	c.sc = sc
	if c.last != nil {
		if err := c.sendLocked(*c.last); err != nil {
			c.logger.Warn("kit: balancer config change not taken", "error", err)
		}
	}
}
