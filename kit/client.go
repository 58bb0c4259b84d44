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
	if u, err := url.Parse(target); err == nil && u.Scheme == balancer.Scheme {
		if _, err := balancer.ParseTarget(*u); err != nil {
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
	if err := o.layers.check(o.layers.tableOrDefault(), clientSide); err != nil {
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
	}, ch.dialOptions()...)
	if tel != nil {
		dial = append(dial, grpc.WithStatsHandler(tel.ClientHandler()))
	}
	var rb resolver.Builder // the target's resolver, when kit must replace it
	if o.discovery != nil {
		var ropts []balancer.ResolverOption
		if o.logger != nil {
			ropts = append(ropts, balancer.WithResolverLogger(o.logger))
		}
		rb = balancer.NewResolverBuilder(o.discovery, ropts...)
	}
	if std != nil {
		sc, err := serviceConfigJSON(std.Balancer)
		if err != nil {
			return nil, err
		}
		dial = append(dial, grpc.WithDefaultServiceConfig(sc))
		inner := rb
		if scheme := schemeOf(target); inner == nil || inner.Scheme() != scheme {
			if inner = resolver.Get(scheme); inner == nil {
				return nil, fmt.Errorf("kit: client for %q: no resolver for scheme %q", target, scheme)
			}
		}
		rb = &liveBuilder{inner: inner, cfg: o.config, logger: logger}
	}
	if rb != nil {
		dial = append(dial, grpc.WithResolvers(rb))
	}
	dial = append(dial, o.dialOptions...)
	cc, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("kit: client for %q: %w", target, err)
	}
	if o.admin != nil {
		o.admin.debug.add(cc, ch)
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
