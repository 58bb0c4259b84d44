package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/internal/consulq"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul/internal"
)

// Registry registers and watches services in Consul. It is safe for
// concurrent use. Call [Registry.Close] (or Deregister every instance) to stop
// its background goroutines.
type Registry struct {
	client *api.Client
	opts   options
	owned  *http.Transport // transport of a client made by NewFromAddress; closed by Close

	// opMu serialises Register and Deregister, so a registration and a
	// withdrawal of one ID cannot interleave (and leave a zombie keeper).
	opMu sync.Mutex

	mu      sync.Mutex
	keepers map[string]*keeper // running keepers by instance ID; guarded by mu

	tokenOK atomic.Bool // a CheckToken passed: Consul knows the token, or runs without ACLs
}

var (
	_ registry.Registrar = (*Registry)(nil)
	_ registry.Discovery = (*Registry)(nil)
)

// keeper follows one registration and restores it when the agent lost it.
type keeper struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the keeper goroutine returned
}

// New returns a Registry that talks to Consul through client.
func New(client *api.Client, opts ...Option) *Registry {
	o := defaultOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Registry{client: client, opts: o, keepers: make(map[string]*keeper)}
}

// NewFromAddress returns a Registry for the agent at addr (host:port or a URL);
// an empty addr uses CONSUL_HTTP_ADDR, else 127.0.0.1:8500. CONSUL_HTTP_TOKEN
// and the other CONSUL_* variables of the Consul CLI are honoured.
func NewFromAddress(addr string, opts ...Option) (*Registry, error) {
	cfg := api.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul: client for %q: %w", cfg.Address, err)
	}
	r := New(client, opts...)
	r.owned = cfg.Transport
	return r, nil
}

// Client returns the Consul API client the registry uses.
func (r *Registry) Client() *api.Client { return r.client }

// Register registers inst with the local agent, with a gRPC health check on
// inst.HostPort(), and keeps it registered until [Registry.Deregister] or
// [Registry.Close]: if the agent loses the registration, it is registered
// again. Registering an ID again replaces the earlier registration.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.stopKeeper(inst.ID) // an old keeper must not restore the old definition
	reg := r.registration(inst)
	if err := r.register(ctx, reg); err != nil {
		return fmt.Errorf("consul: register %s: %w", inst.ID, consulq.ACL(err, fmt.Sprintf("service:write on %q", inst.Name)))
	}
	r.opts.logger.LogAttrs(ctx, slog.LevelInfo, "registered in consul",
		slog.String("name", inst.Name), slog.String("id", inst.ID), slog.String("address", inst.HostPort()))

	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &keeper{cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	r.keepers[inst.ID] = k
	r.mu.Unlock()
	go func() {
		defer close(k.done)
		r.keep(kctx, reg)
	}()
	return nil
}

// Deregister stops keeping inst registered and removes it from the agent.
// An instance the agent does not know is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.stopKeeper(inst.ID)
	err := r.client.Agent().ServiceDeregisterOpts(inst.ID, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("consul: deregister %s: %w", inst.ID, consulq.ACL(err, fmt.Sprintf("service:write on %q", inst.Name)))
	}
	r.opts.logger.LogAttrs(ctx, slog.LevelInfo, "deregistered from consul",
		slog.String("name", inst.Name), slog.String("id", inst.ID))
	return nil
}

// Close stops the keepers of every registration without deregistering, and
// closes idle connections of a client made by [NewFromAddress]. It does not
// stop watchers.
func (r *Registry) Close() {
	if r.owned != nil {
		defer r.owned.CloseIdleConnections()
	}
	r.mu.Lock()
	keepers := r.keepers
	r.keepers = make(map[string]*keeper)
	r.mu.Unlock()
	for _, k := range keepers {
		k.stop()
	}
}

// stopKeeper stops the keeper of id, if any, and waits for it.
func (r *Registry) stopKeeper(id string) {
	r.mu.Lock()
	k := r.keepers[id]
	delete(r.keepers, id)
	r.mu.Unlock()
	if k != nil {
		k.stop()
	}
}

func (k *keeper) stop() {
	k.cancel()
	<-k.done
}

func (r *Registry) register(ctx context.Context, reg *api.AgentServiceRegistration) error {
	return r.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
}

func (r *Registry) registration(inst registry.Instance) *api.AgentServiceRegistration {
	check := &api.AgentServiceCheck{
		CheckID:                        "service:" + inst.ID + ":grpc",
		Name:                           "gRPC health " + inst.HostPort(),
		GRPC:                           inst.HostPort(),
		Interval:                       r.opts.checkInterval.String(),
		Timeout:                        r.opts.checkTimeout.String(),
		DeregisterCriticalServiceAfter: r.opts.deregisterAfter.String(),
	}
	if r.opts.initialPassing {
		check.Status = api.HealthPassing
	}
	return &api.AgentServiceRegistration{
		ID:      inst.ID,
		Name:    inst.Name,
		Address: inst.Address,
		Port:    inst.Port,
		Tags:    inst.Tags,
		Meta:    inst.Meta,
		Weights: &api.AgentWeights{Passing: orOne(inst.Weights.Passing), Warning: orOne(inst.Weights.Warning)},
		Check:   check,
	}
}

func orOne(n int) int {
	if n <= 0 {
		return 1
	}
	return n
}

// keep follows reg on the local agent with blocking queries and registers it
// again whenever the agent answers that it does not know it. After the agent
// was unreachable (a restart lost its catalog) the registration is restored
// as it was first made. When a running agent dropped it, Consul may have
// removed it because its check kept failing (DeregisterCriticalServiceAfter),
// so it is restored critical and gets traffic only once its check passes.
func (r *Registry) keep(ctx context.Context, reg *api.AgentServiceRegistration) {
	critical := *reg
	check := *reg.Check
	check.Status = api.HealthCritical
	critical.Check = &check
	log := r.opts.logger.With(slog.String("name", reg.Name), slog.String("id", reg.ID))
	// The keeper talks to the local agent: after an outage it retries at
	// least every keeperMax, so the registration is back soon after the
	// agent is (watchers hold their sets meanwhile, see WithRestartGrace).
	bo := consulq.Backoff{Base: r.opts.backoffBase, Max: min(r.opts.backoffMax, r.opts.keeperMax)}
	var hash string
	var pause time.Duration
	failing := false   // the last round ended in an error (logged once)
	agentAway := false // the last query did not reach the agent
	for {
		if internal.Sleep(ctx, pause) != nil {
			return
		}
		start := time.Now()
		qctx, cancel := context.WithTimeout(ctx, r.queryTimeout(hash != ""))
		_, meta, err := r.client.Agent().Service(reg.ID,
			(&api.QueryOptions{WaitHash: hash, WaitTime: r.opts.waitTime}).WithContext(qctx))
		cancel()
		err = consulq.ACL(err, fmt.Sprintf("service:read on %q", reg.Name))
		if ctx.Err() != nil {
			return
		}
		switch {
		case isNotFound(err):
			restore := &critical
			if agentAway { // the agent restarted and lost its catalog; we did not fail
				restore = reg
			}
			if err = consulq.ACL(r.register(ctx, restore), fmt.Sprintf("service:write on %q", reg.Name)); err == nil {
				log.LogAttrs(ctx, slog.LevelWarn, "consul lost the registration; registered again",
					slog.String("status", restore.Check.Status))
				hash, pause, failing, agentAway = "", 0, false, false
				bo.Reset()
				continue
			}
		case err != nil && !errors.Is(err, ErrACLRefused):
			agentAway = true
		}
		if err != nil {
			if !failing {
				msg := "consul agent unreachable; will register again when it is back"
				if errors.Is(err, ErrACLRefused) {
					msg = "consul refuses the token; will register again when it is accepted"
				}
				log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Any("error", err))
				failing = true
			}
			pause = bo.Next()
			continue
		}
		if failing {
			log.LogAttrs(ctx, slog.LevelInfo, "consul agent reachable again; registration present")
			failing = false
		}
		bo.Reset()
		agentAway = false
		hash = meta.LastContentHash
		pause = r.opts.minInterval - time.Since(start)
	}
}

func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
