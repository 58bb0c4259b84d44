package resolver

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/registry"
)

// Builder builds the resolvers of consul targets. The one the package
// registers with grpc-go watches the Consul agent of each target; one made by
// [NewBuilder] watches the discovery it was given. Safe for concurrent use.
type Builder struct {
	discovery registry.Discovery // nil: Consul, per target (consulDiscovery)
	logger    *slog.Logger       // nil: discard
}

var _ resolver.Builder = (*Builder)(nil)

// Option configures a [Builder].
type Option interface{ apply(*Builder) }

type optionFunc func(*Builder)

func (f optionFunc) apply(b *Builder) { f(b) }

// WithLogger sets the logger of the resolvers (discovery failures after the
// first instance set, datacenter failovers and failbacks, states grpc-go
// refused). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(b *Builder) { b.logger = l })
}

// NewBuilder returns a builder for the consul scheme whose resolvers watch
// d. Pass it to grpc.WithResolvers to resolve through a registry other than
// the Consul agent of the environment, e.g. an in-memory one in tests. A nil
// d means what the registered builder does: the Consul agent of the
// target's authority, else of CONSUL_HTTP_ADDR.
func NewBuilder(d registry.Discovery, opts ...Option) *Builder {
	b := &Builder{discovery: d}
	for _, opt := range opts {
		opt.apply(b)
	}
	return b
}

// Scheme returns [Scheme].
func (*Builder) Scheme() string { return Scheme }

// Build starts watching the target's service, in each of its datacenters
// ([Target.Datacenters]). It fails on a malformed target (see
// [ParseTarget]), on a target naming an agent when the builder has a
// discovery of its own, and when a watch cannot start (a discovery without
// datacenters refuses a failover list).
func (b *Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	t, err := ParseTarget(target.URL)
	if err != nil {
		return nil, err
	}
	logger := b.logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, closeDiscovery := b.discovery, func() {}
	if d == nil {
		if d, closeDiscovery, err = consulDiscovery(t, logger); err != nil {
			return nil, err
		}
	} else if t.Agent != "" {
		return nil, fmt.Errorf("consul resolver: target %q names an agent, but this client has its own discovery", target.URL.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	names := t.Datacenters()
	watchers := make([]registry.Watcher, 0, len(names))
	for i, dc := range names {
		w, err := d.Watch(ctx, t.Service, t.watchOptions(i)...)
		if err != nil {
			for _, w := range watchers {
				w.Stop()
			}
			cancel()
			closeDiscovery()
			if len(names) > 1 {
				return nil, fmt.Errorf("consul resolver: watch %q in datacenter %s: %w", t.Service, dc, err)
			}
			return nil, fmt.Errorf("consul resolver: watch %q: %w", t.Service, err)
		}
		watchers = append(watchers, w)
	}
	r := &consulResolver{cancel: cancel, done: make(chan struct{})}
	f := newFeeder(cc, t.Service, names, logger)
	go func() {
		defer close(r.done)
		defer closeDiscovery()
		f.run(ctx, watchers)
	}()
	return r, nil
}

type consulResolver struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the feeder and its watches returned
}

// ResolveNow does nothing: the watch pushes every change as it happens.
func (*consulResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *consulResolver) Close() {
	r.cancel()
	<-r.done
}
