package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
)

// Scheme is the resolver scheme: consul:///<service>[?tag=...&dc=...].
const Scheme = "consul"

func init() {
	resolver.Register(&resolverBuilder{})
}

// ResolverOption configures a builder made by [NewResolverBuilder].
type ResolverOption func(*resolverBuilder)

// WithResolverLogger sets the logger of the resolvers; default: discard.
func WithResolverLogger(l *slog.Logger) ResolverOption {
	return func(b *resolverBuilder) { b.logger = l }
}

// NewResolverBuilder returns a resolver.Builder for the consul scheme whose
// resolvers watch d. Pass it to grpc.WithResolvers to use a registry other than
// the Consul agent of the environment, e.g. an in-memory one in tests.
func NewResolverBuilder(d registry.Discovery, opts ...ResolverOption) resolver.Builder {
	b := &resolverBuilder{discovery: d}
	for _, opt := range opts {
		opt(b)
	}
	return b
}

// resolverBuilder builds consul resolvers over discovery, or, when discovery is
// nil (the globally registered builder), over a Consul client made from the
// target's authority or the CONSUL_* environment.
type resolverBuilder struct {
	discovery registry.Discovery
	logger    *slog.Logger
}

func (*resolverBuilder) Scheme() string { return Scheme }

// Target is a parsed consul target.
type Target struct {
	// Service is the service name.
	Service string
	// Agent is the Consul agent address from the authority, if any.
	Agent string
	// Options are the tag and datacenter filters.
	Options []registry.WatchOption
}

// ParseTarget parses consul://[agent]/<service>[?tag=...&dc=...]. Unknown
// query parameters are an error, so a typo is not silently ignored.
func ParseTarget(u url.URL) (Target, error) {
	t := Target{Service: strings.TrimPrefix(u.Path, "/"), Agent: u.Host}
	if u.Opaque != "" {
		t.Service = u.Opaque
	}
	if t.Service == "" || strings.Contains(t.Service, "/") {
		return Target{}, fmt.Errorf("consul resolver: target %q: want consul:///<service>", u.String())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Target{}, fmt.Errorf("consul resolver: target %q: %w", u.String(), err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return Target{}, fmt.Errorf("consul resolver: target %q: parameter %q given %d times", u.String(), k, len(v))
		}
		switch k {
		case "tag":
			t.Options = append(t.Options, registry.WithTag(v[0]))
		case "dc":
			t.Options = append(t.Options, registry.WithDatacenter(v[0]))
		default:
			return Target{}, fmt.Errorf("consul resolver: target %q: unknown parameter %q (want tag, dc)", u.String(), k)
		}
	}
	return t, nil
}

func (b *resolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	t, err := ParseTarget(target.URL)
	if err != nil {
		return nil, err
	}
	logger := b.logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := b.discovery
	closeDiscovery := func() {}
	if d == nil {
		// The agent of the authority, else the environment (CONSUL_HTTP_ADDR).
		reg, err := consul.NewFromAddress(t.Agent, consul.WithLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("consul resolver: %w", err)
		}
		d, closeDiscovery = reg, reg.Close
	} else if t.Agent != "" {
		return nil, fmt.Errorf("consul resolver: target %q names an agent, but this client has its own discovery", target.URL.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := d.Watch(ctx, t.Service, t.Options...)
	if err != nil {
		cancel()
		closeDiscovery()
		return nil, fmt.Errorf("consul resolver: watch %q: %w", t.Service, err)
	}
	r := &consulResolver{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer closeDiscovery()
		watch(ctx, w, cc, t.Service, logger)
	}()
	return r, nil
}

type consulResolver struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the watch goroutine returned
}

// ResolveNow does nothing: the watch pushes every change as it happens.
func (*consulResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *consulResolver) Close() {
	r.cancel()
	<-r.done
}

// watch feeds cc from w until ctx is done. Errors before the first set are
// reported to cc, so RPCs fail with Unavailable instead of waiting for ever;
// errors after it are logged and leave the last good set in place. Repeated
// errors are spaced (10ms doubling to 1s) in case a Discovery returns them
// without backing off itself.
func watch(ctx context.Context, w registry.Watcher, cc resolver.ClientConn, service string, logger *slog.Logger) {
	defer w.Stop()
	haveSet := false
	var pause time.Duration
	for {
		set, err := w.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, registry.ErrWatcherStopped) {
			return
		}
		if err != nil {
			if !haveSet {
				cc.ReportError(fmt.Errorf("consul resolver: no instances of %q known yet: %w", service, err))
			} else {
				logger.LogAttrs(ctx, slog.LevelWarn, "discovery failing; keeping the last instance set",
					slog.String("service", service), slog.Any("error", err))
			}
			pause = min(max(2*pause, 10*time.Millisecond), time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		pause = 0
		haveSet = true
		if err := cc.UpdateState(State(set)); err != nil {
			logger.LogAttrs(ctx, slog.LevelDebug, "balancer rejected resolver state",
				slog.String("service", service), slog.Int("endpoints", len(set)), slog.Any("error", err))
		}
	}
}

// State turns an instance set into resolver state: one endpoint per instance,
// carrying the instance's base weight ([registry.Instance.Weight]).
func State(set []registry.Instance) resolver.State {
	eps := make([]resolver.Endpoint, 0, len(set))
	for _, inst := range set {
		ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: inst.HostPort()}}}
		eps = append(eps, weight.Set(ep, weight.EndpointInfo{Weight: inst.Weight()}))
	}
	return resolver.State{Endpoints: eps}
}
