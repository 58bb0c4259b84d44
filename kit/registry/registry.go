package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ErrInvalidInstance is returned (wrapped) by [Instance.Validate] and by
// Registrar implementations when an instance cannot be registered as given.
var ErrInvalidInstance = errors.New("registry: invalid instance")

// ErrWatcherStopped is returned by [Watcher.Next] after [Watcher.Stop].
var ErrWatcherStopped = errors.New("registry: watcher stopped")

// Health is the aggregated health of an instance as its registry sees it.
// Unhealthy (critical) instances are never returned by a [Watcher].
type Health string

const (
	// HealthPassing means every check of the instance passes.
	HealthPassing Health = "passing"
	// HealthWarning means at least one check warns and none is critical.
	HealthWarning Health = "warning"
)

// Weights are the relative load-balancing weights of an instance, one per
// health state. Zero means "the registry's default" (1 for both in Consul).
type Weights struct {
	Passing int `yaml:"passing" json:"passing"`
	Warning int `yaml:"warning" json:"warning"`
}

// Instance is one reachable copy of a service.
type Instance struct {
	// ID identifies the instance within its registry; unique per service.
	ID string
	// Name is the service name clients look up, e.g. "user".
	Name string
	// Address is the host (IP or DNS name) clients dial.
	Address string
	// Port is the TCP port clients dial, 1 to 65535.
	Port int
	// Tags filter instances in a watch (see [WithTag]).
	Tags []string
	// Meta carries free-form string pairs. The key "weight" overrides
	// Weights.Passing in grpckit's resolver.
	Meta map[string]string
	// Weights are the balancing weights by health.
	Weights Weights
	// Health is set by discovery; registrars ignore it.
	Health Health
}

// HostPort returns Address:Port in the form net.Dial accepts.
func (i Instance) HostPort() string {
	return net.JoinHostPort(i.Address, strconv.Itoa(i.Port))
}

// Weight returns the base weight for the instance's current health. A
// warning instance weighs Weights.Warning. A passing one weighs the "weight"
// meta entry when that is a positive integer, else Weights.Passing. A weight
// that is not positive counts as 1; weights are capped at 1<<31.
func (i Instance) Weight() uint32 {
	w := int64(i.Weights.Passing)
	switch {
	case i.Health == HealthWarning:
		w = int64(i.Weights.Warning)
	default:
		if v, err := strconv.ParseInt(i.Meta["weight"], 10, 64); err == nil && v > 0 {
			w = v
		}
	}
	if w <= 0 {
		return 1
	}
	return uint32(min(w, 1<<31))
}

// Validate reports whether the instance can be registered: a non-empty ID and
// Name of valid UTF-8, an Address, a Port in 1..65535 and non-negative weights.
// The error wraps [ErrInvalidInstance] and names the field.
func (i Instance) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidInstance, i.ID, fmt.Sprintf(format, args...))
	}
	switch {
	case i.ID == "" || !utf8.ValidString(i.ID):
		return bad("ID must be non-empty UTF-8")
	case i.Name == "" || !utf8.ValidString(i.Name):
		return bad("Name must be non-empty UTF-8")
	case i.Address == "":
		return bad("Address must be set")
	case i.Port < 1 || i.Port > 65535:
		return bad("Port %d is outside 1..65535", i.Port)
	case i.Weights.Passing < 0 || i.Weights.Warning < 0:
		return bad("Weights %+v must not be negative", i.Weights)
	}
	return nil
}

// Equal reports whether two instances are the same in every field.
func (i Instance) Equal(o Instance) bool {
	return i.ID == o.ID && i.Name == o.Name && i.Address == o.Address && i.Port == o.Port &&
		slices.Equal(i.Tags, o.Tags) && maps.Equal(i.Meta, o.Meta) &&
		i.Weights == o.Weights && i.Health == o.Health
}

// SortByID sorts instances by ID, then address, so sets can be compared.
func SortByID(set []Instance) {
	slices.SortFunc(set, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.HostPort(), b.HostPort()))
	})
}

// EqualSets reports whether two sets sorted with [SortByID] hold equal instances.
func EqualSets(a, b []Instance) bool {
	return slices.EqualFunc(a, b, Instance.Equal)
}

// Registrar announces instances. Implementations are safe for concurrent use.
type Registrar interface {
	// Register announces inst until Deregister is called. Calling it again for
	// the same ID replaces the registration. An invalid instance gives an error
	// wrapping ErrInvalidInstance; an unreachable registry gives an error.
	Register(ctx context.Context, inst Instance) error
	// Deregister withdraws inst (matched by ID). Withdrawing an instance that is
	// not registered is not an error.
	Deregister(ctx context.Context, inst Instance) error
}

// Discovery watches the instances of services. Implementations are safe for
// concurrent use.
type Discovery interface {
	// Watch starts watching the healthy instances of the named service. The
	// watch ends when ctx is done or the Watcher is stopped.
	Watch(ctx context.Context, name string, opts ...WatchOption) (Watcher, error)
}

// Watcher follows one service. Next and Stop may be called from different
// goroutines, but Next must not be called concurrently with itself.
type Watcher interface {
	// Next blocks until the set of healthy instances differs from the set it
	// returned last (the first call returns as soon as the set is known) and
	// returns the whole set, sorted with SortByID. An empty set means the
	// registry answered and the service has no healthy instance.
	//
	// When the registry cannot be reached, Next returns an error once per
	// outage and keeps retrying with backoff on the following calls; callers
	// keep using the last set they received. Next returns ctx.Err() when ctx is
	// done and ErrWatcherStopped after Stop.
	Next(ctx context.Context) ([]Instance, error)
	// Stop ends the watch and unblocks a pending Next. It is idempotent.
	Stop()
}

// WatchOptions are the filters of a watch. Implementations of [Discovery]
// read them with [NewWatchOptions].
type WatchOptions struct {
	// Tag keeps only instances carrying this tag; empty keeps all.
	Tag string
	// Datacenter selects the Consul datacenter; empty means the agent's own.
	// Registries without datacenters reject a non-empty value.
	Datacenter string
}

// WatchOption sets a filter of [Discovery.Watch].
type WatchOption func(*WatchOptions)

// WithTag keeps only instances carrying tag.
func WithTag(tag string) WatchOption { return func(o *WatchOptions) { o.Tag = tag } }

// WithDatacenter watches the service in another datacenter.
func WithDatacenter(dc string) WatchOption { return func(o *WatchOptions) { o.Datacenter = dc } }

// NewWatchOptions applies opts to the zero WatchOptions.
func NewWatchOptions(opts ...WatchOption) WatchOptions {
	var o WatchOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
