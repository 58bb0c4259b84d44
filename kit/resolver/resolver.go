package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

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
// first instance set, states grpc-go refused). Default: discard.
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

// Build starts watching the target's service. It fails on a malformed
// target (see [ParseTarget]), on a target naming an agent when the builder
// has a discovery of its own, and when the watch cannot start.
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
