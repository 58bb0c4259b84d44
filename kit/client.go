package kit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/balancer"
	kitresolver "github.com/grpckit/grpckit/kit/resolver"
)

// defaultServiceConfig picks the load-balancing policy of kit clients.
const defaultServiceConfig = `{"loadBalancingConfig":[{"kit_weighted":{}}]}`

// NewClient returns a client for target with grpc.NewClient semantics: it does
// not connect until the first call. Besides every target grpc-go accepts, it
// resolves consul:///<service>[?tag=...&dc=...]; such a target is checked
// here, so a malformed one fails now rather than at the first call.
func NewClient(target string, opts ...ClientOption) (*grpc.ClientConn, error) {
	var o clientOptions
	for _, opt := range opts {
		opt.applyClient(&o)
	}
	if u, err := url.Parse(target); err == nil && u.Scheme == kitresolver.Scheme {
		if _, err := kitresolver.ParseTarget(*u); err != nil {
			return nil, fmt.Errorf("kit: %w", err)
		}
	}
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	std, err := o.config.sections()
	if err != nil {
		return nil, err
	}
	if err := o.layers.check(layerTable, clientSide); err != nil {
		return nil, err
	}
	tel, err := clientTelemetry(o.layers, logger)
	if err != nil {
		return nil, err
	}
	ch, live, err := buildChain(o.layers, clientSide, std, deps{logger: logger, meter: meterOf(tel)})
	if err != nil {
		return nil, err
	}
	creds := o.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(defaultServiceConfig),
	}, ch.dialOptions(tel)...)
	if o.perRPC != nil {
		dial = append(dial, grpc.WithPerRPCCredentials(o.perRPC))
	}
	var rb resolver.Builder // the target's resolver, when kit must replace it
	if o.discovery != nil {
		var ropts []kitresolver.Option
		if o.logger != nil {
			ropts = append(ropts, kitresolver.WithLogger(o.logger))
		}
		rb = kitresolver.NewBuilder(o.discovery, ropts...)
	}
	monitor := o.monitor
	if monitor == nil && o.admin != nil {
		monitor = new(balancer.Monitor)
	}
	if std != nil || monitor != nil || o.logger != nil {
		// kit wraps the target's resolver, to hand the balancer its
		// service config, Monitor and logger through the resolver state.
		inner := rb
		scheme := schemeOf(target)
		if inner == nil || inner.Scheme() != scheme {
			inner = resolver.Get(scheme)
		}
		switch {
		case inner == nil && std != nil:
			return nil, fmt.Errorf("kit: client for %q: no resolver for scheme %q", target, scheme)
		case inner != nil:
			rb = &attachBuilder{inner: inner, monitor: monitor, logger: o.logger}
		}
	}
	if std != nil {
		sc, err := serviceConfigJSON(std.Balancer)
		if err != nil {
			return nil, err
		}
		dial = append(dial, grpc.WithDefaultServiceConfig(sc))
		rb = &liveBuilder{inner: rb, cfg: o.config, logger: logger}
	}
	switch {
	case rb == nil:
		dial = append(dial, o.dialOptions...)
	case std == nil && o.discovery == nil:
		// kit wraps the registered resolver only to reach the balancer: a
		// resolver the caller gives for the same scheme with WithDialOptions
		// comes first and wins (grpc-go takes the first), unwrapped.
		dial = append(append(dial, o.dialOptions...), grpc.WithResolvers(rb))
	default:
		dial = append(append(dial, grpc.WithResolvers(rb)), o.dialOptions...)
	}
	cc, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("kit: client for %q: %w", target, err)
	}
	if o.admin != nil {
		o.admin.debug.add(cc, ch, monitor)
	}
	if o.config != nil {
		// The layers follow the configuration for the life of cc, idle or
		// not; a ClientConn has no close hook, so a goroutine waits for it.
		stop := o.config.follow(live, logger)
		go func() {
			for s := cc.GetState(); s != connectivity.Shutdown; s = cc.GetState() {
				cc.WaitForStateChange(context.Background(), s)
			}
			stop()
		}()
	}
	return cc, nil
}

// attachBuilder wraps the resolver of a client's target: every state it
// reports carries what kit gives the client's kit_weighted balancer, the
// Monitor its admin page reads and the client's logger
// ([balancer.SetMonitor], [balancer.SetLogger]).
type attachBuilder struct {
	inner   resolver.Builder
	monitor *balancer.Monitor // nil: none
	logger  *slog.Logger      // nil: the balancer's default, slog.Default()
}

func (b *attachBuilder) Scheme() string { return b.inner.Scheme() }

func (b *attachBuilder) Build(t resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	return b.inner.Build(t, &attachCC{ClientConn: cc, b: b}, opts)
}

// attachCC adds the builder's attributes to the states of the wrapped
// resolver.
type attachCC struct {
	resolver.ClientConn
	b *attachBuilder
}

func (c *attachCC) UpdateState(s resolver.State) error {
	if c.b.monitor != nil {
		s = balancer.SetMonitor(s, c.b.monitor)
	}
	if c.b.logger != nil {
		s = balancer.SetLogger(s, c.b.logger)
	}
	return c.ClientConn.UpdateState(s)
}
