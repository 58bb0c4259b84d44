package kit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/logging"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/recovery"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

// Layer names a middleware layer, for [WithoutLayers].
type Layer string

// The layers of kit's chains. Server, outermost first: telemetry (stats
// handler), recovery, logging, retry (marks retried calls so that their own
// outgoing calls do not retry), ratelimit, timeout, auth, dedupe. Client:
// telemetry (stats handler), dedupe (request ids), timeout, retry, breaker,
// ratelimit.
const (
	LayerTelemetry Layer = "telemetry"
	LayerRecovery  Layer = "recovery"
	LayerLogging   Layer = "logging"
	LayerRateLimit Layer = "ratelimit"
	LayerTimeout   Layer = "timeout"
	LayerAuth      Layer = "auth"
	LayerDedupe    Layer = "dedupe"
	LayerRetry     Layer = "retry"
	LayerBreaker   Layer = "breaker"
)

// ServerLayers are a server's middleware objects, as [Server.Layers]
// returns them. Change a layer at run time with its SetConfig. A nil layer
// is off.
type ServerLayers struct {
	Telemetry *telemetry.Telemetry
	Recovery  *recovery.Recoverer
	Logging   *logging.Logger
	Retry     *retry.Retrier // server side: marks retried calls
	RateLimit *ratelimit.Limiter
	Timeout   *timeout.Timeouts
	Auth      *auth.Authenticator
	Dedupe    *dedupe.Cache
}

// clientLayers are a client's middleware objects. A nil layer is off.
type clientLayers struct {
	Telemetry *telemetry.Telemetry
	Dedupe    []string // methods whose calls carry a request id
	Timeout   *timeout.Timeouts
	Retry     *retry.Retrier
	Breaker   *breaker.Breakers
	RateLimit *ratelimit.ClientLimiter
}

// layerChoice is what options said about the layers: objects to use and
// layers to leave out. Layers in neither get kit's defaults.
type layerChoice struct {
	server  ServerLayers
	client  clientLayers
	without map[Layer]bool
}

func (c *layerChoice) off(l Layer) bool { return c.without[l] }

// check refuses a layer both given and turned off (a silent unauthenticated
// server is worse than an error) and unknown layer names.
func (c *layerChoice) check(server bool) error {
	given := map[Layer]bool{LayerTelemetry: c.server.Telemetry != nil || c.client.Telemetry != nil}
	if server {
		given[LayerRateLimit] = c.server.RateLimit != nil
		given[LayerTimeout] = c.server.Timeout != nil
		given[LayerAuth] = c.server.Auth != nil
		given[LayerDedupe] = c.server.Dedupe != nil
		given[LayerLogging] = c.server.Logging != nil
	} else {
		given[LayerTimeout] = c.client.Timeout != nil
		given[LayerRetry] = c.client.Retry != nil
		given[LayerBreaker] = c.client.Breaker != nil
		given[LayerRateLimit] = c.client.RateLimit != nil
		given[LayerDedupe] = len(c.client.Dedupe) > 0
	}
	for l := range c.without {
		switch l {
		case LayerTelemetry, LayerRecovery, LayerLogging, LayerRateLimit, LayerTimeout, LayerAuth, LayerDedupe, LayerRetry, LayerBreaker:
		default:
			return fmt.Errorf("kit: WithoutLayers: unknown layer %q", l)
		}
		if given[l] {
			return fmt.Errorf("kit: layer %q is both given and turned off by WithoutLayers", l)
		}
	}
	return nil
}

type layerOption func(*layerChoice)

func (f layerOption) applyServer(o *serverOptions) { f(&o.layers) }
func (f layerOption) applyClient(o *clientOptions) { f(&o.layers) }

// WithTelemetry makes a server or client use t for traces and metrics
// instead of one of its own. Pass a server's telemetry ([Server.Layers]) to
// the clients its handlers use, so that one trace spans both hops and their
// metrics share the server's /metrics (such clients must not outlive the
// server, which flushes its telemetry on Shutdown). Otherwise the caller
// owns t.
func WithTelemetry(t *telemetry.Telemetry) Option {
	return layerOption(func(c *layerChoice) { c.server.Telemetry, c.client.Telemetry = t, t })
}

// WithoutLayers turns layers off on a server or client.
func WithoutLayers(layers ...Layer) Option {
	return layerOption(func(c *layerChoice) {
		if c.without == nil {
			c.without = make(map[Layer]bool)
		}
		for _, l := range layers {
			c.without[l] = true
		}
	})
}

// WithRateLimit sets a server's inbound limits (default: none).
func WithRateLimit(r *ratelimit.Limiter) ServerOption {
	return layerOption(func(c *layerChoice) { c.server.RateLimit = r })
}

// WithServerTimeouts sets a server's deadline cap (default: timeout.DefaultConfig).
func WithServerTimeouts(t *timeout.Timeouts) ServerOption {
	return layerOption(func(c *layerChoice) { c.server.Timeout = t })
}

// WithAuth checks bearer tokens on a server (default: no auth layer).
func WithAuth(a *auth.Authenticator) ServerOption {
	return layerOption(func(c *layerChoice) { c.server.Auth = a })
}

// WithDedupe sets a server's replay cache (default: dedupe.DefaultConfig,
// which deduplicates no method).
func WithDedupe(d *dedupe.Cache) ServerOption {
	return layerOption(func(c *layerChoice) { c.server.Dedupe = d })
}

// WithAccessLog sets a server's access log (default: info level, on the
// server's logger).
func WithAccessLog(a *logging.Logger) ServerOption {
	return layerOption(func(c *layerChoice) { c.server.Logging = a })
}

// WithClientTimeouts sets a client's default and per-method deadlines
// (default: timeout.DefaultConfig, a 5s deadline for calls without one).
func WithClientTimeouts(t *timeout.Timeouts) ClientOption {
	return layerOption(func(c *layerChoice) { c.client.Timeout = t })
}

// WithRetry sets a client's retry policy and budget (default: retry.DefaultConfig).
func WithRetry(r *retry.Retrier) ClientOption {
	return layerOption(func(c *layerChoice) { c.client.Retry = r })
}

// WithBreaker sets a client's circuit breakers (default: breaker.DefaultConfig).
func WithBreaker(b *breaker.Breakers) ClientOption {
	return layerOption(func(c *layerChoice) { c.client.Breaker = b })
}

// WithClientRateLimit sets a client's outbound limits (default: none).
func WithClientRateLimit(r *ratelimit.ClientLimiter) ClientOption {
	return layerOption(func(c *layerChoice) { c.client.RateLimit = r })
}

// WithDedupedMethods stamps a request id on calls to methods (full names or
// "/pkg.Service/*"), the same across retries, so that servers deduplicating
// those methods replay instead of running them twice, and the retry layer
// may retry them although they are not idempotent.
func WithDedupedMethods(methods ...string) ClientOption {
	return layerOption(func(c *layerChoice) { c.client.Dedupe = append(c.client.Dedupe, methods...) })
}

// WithServerCredentials sets a server's transport credentials (TLS or mTLS:
// auth.ServerTLS). Default: plaintext.
func WithServerCredentials(creds credentials.TransportCredentials) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.grpcOptions = append(o.grpcOptions, grpc.Creds(creds)) })
}

// WithPerRPCCredentials attaches credentials to every call of a client, e.g.
// auth.BearerToken.
func WithPerRPCCredentials(creds credentials.PerRPCCredentials) ClientOption {
	return clientOptionFunc(func(o *clientOptions) {
		o.dialOptions = append(o.dialOptions, grpc.WithPerRPCCredentials(creds))
	})
}

// buildServerLayers completes the chosen layers with kit's defaults. owned
// is the telemetry kit made, which Shutdown must flush; nil if none.
//
// std, when not nil, configures the layers kit builds instead of their
// defaults; live collects their SetConfig calls for later changes.
func buildServerLayers(c layerChoice, service string, logger *slog.Logger, std *config.Standard) (l ServerLayers, owned *telemetry.Telemetry, live *appliers, err error) {
	if err := c.check(true); err != nil {
		return l, nil, nil, err
	}
	if std == nil {
		d := config.DefaultStandard()
		std = &d
	}
	live = &appliers{}
	l = c.server
	if !c.off(LayerTelemetry) && l.Telemetry == nil {
		cfg := std.Telemetry
		if cfg.ServiceName == "" {
			cfg.ServiceName = service
		}
		if l.Telemetry, err = telemetry.New(context.Background(), cfg, telemetry.WithLogger(logger)); err != nil {
			return l, nil, nil, fmt.Errorf("kit: telemetry: %w", err)
		}
		owned = l.Telemetry
	}
	if c.off(LayerTelemetry) {
		l.Telemetry = nil
	}
	mp := meterOf(l.Telemetry)
	fail := func(layer Layer, e error) (ServerLayers, *telemetry.Telemetry, *appliers, error) {
		if owned != nil {
			owned.Shutdown(context.Background())
		}
		return l, nil, nil, fmt.Errorf("kit: %s: %w", layer, e)
	}
	if build(c, LayerRecovery, &l.Recovery) {
		if l.Recovery, err = recovery.New(recovery.DefaultConfig(), recovery.WithLogger(logger), recovery.WithMeterProvider(mp)); err != nil {
			return fail(LayerRecovery, err)
		}
	}
	if build(c, LayerLogging, &l.Logging) {
		if l.Logging, err = logging.New(std.Log.Access, logging.WithLogger(logger), logging.WithMeterProvider(mp)); err != nil {
			return fail(LayerLogging, err)
		}
		live.add(section(std.Log.Access, func(s *config.Standard) logging.Config { return s.Log.Access }, l.Logging.SetConfig))
	}
	if build(c, LayerRetry, &l.Retry) {
		if l.Retry, err = retry.New(std.Retry, retry.WithLogger(logger), retry.WithMeterProvider(mp)); err != nil {
			return fail(LayerRetry, err)
		}
		live.add(section(std.Retry, func(s *config.Standard) retry.Config { return s.Retry }, l.Retry.SetConfig))
	}
	if build(c, LayerRateLimit, &l.RateLimit) {
		if l.RateLimit, err = ratelimit.New(std.RateLimit, ratelimit.WithLogger(logger), ratelimit.WithMeterProvider(mp)); err != nil {
			return fail(LayerRateLimit, err)
		}
		live.add(section(std.RateLimit, func(s *config.Standard) ratelimit.Config { return s.RateLimit }, l.RateLimit.SetConfig))
	}
	if build(c, LayerTimeout, &l.Timeout) {
		if l.Timeout, err = timeout.New(std.Timeout, timeout.WithLogger(logger), timeout.WithMeterProvider(mp)); err != nil {
			return fail(LayerTimeout, err)
		}
		live.add(section(std.Timeout, func(s *config.Standard) timeout.Config { return s.Timeout }, l.Timeout.SetConfig))
	}
	if c.off(LayerAuth) {
		l.Auth = nil // auth has no default: it needs keys
	}
	if build(c, LayerDedupe, &l.Dedupe) {
		if l.Dedupe, err = dedupe.New(dedupe.DefaultConfig(), dedupe.WithLogger(logger), dedupe.WithMeterProvider(mp)); err != nil {
			return fail(LayerDedupe, err)
		}
	}
	return l, owned, live, nil
}

// build reports whether layer needs a default object: not turned off and
// not given. A turned-off layer's field is cleared.
func build[T any](c layerChoice, layer Layer, field **T) bool {
	if c.off(layer) {
		*field = nil
		return false
	}
	return *field == nil
}

// grpcOptions installs l's stats handler and interceptors in kit's order.
func (l ServerLayers) grpcOptions() []grpc.ServerOption {
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	add := func(u grpc.UnaryServerInterceptor, s grpc.StreamServerInterceptor) {
		unary = append(unary, u)
		if s != nil {
			stream = append(stream, s)
		}
	}
	if l.Recovery != nil {
		add(l.Recovery.UnaryServerInterceptor(), l.Recovery.StreamServerInterceptor())
	}
	if l.Logging != nil {
		add(l.Logging.UnaryServerInterceptor(), l.Logging.StreamServerInterceptor())
	}
	if l.Retry != nil {
		add(l.Retry.UnaryServerInterceptor(), l.Retry.StreamServerInterceptor())
	}
	if l.RateLimit != nil {
		add(l.RateLimit.UnaryServerInterceptor(), l.RateLimit.StreamServerInterceptor())
	}
	if l.Timeout != nil {
		add(l.Timeout.UnaryServerInterceptor(), l.Timeout.StreamServerInterceptor())
	}
	if l.Auth != nil {
		add(l.Auth.UnaryServerInterceptor(), l.Auth.StreamServerInterceptor())
	}
	if l.Dedupe != nil {
		add(l.Dedupe.UnaryServerInterceptor(), nil)
	}
	var opts []grpc.ServerOption
	if len(unary) > 0 {
		opts = append(opts, grpc.ChainUnaryInterceptor(chainUnaryServer(unary)))
	}
	if len(stream) > 0 {
		opts = append(opts, grpc.ChainStreamInterceptor(stream...))
	}
	if l.Telemetry != nil {
		opts = append(opts, grpc.StatsHandler(l.Telemetry.ServerHandler()))
	}
	return opts
}

// buildClientLayers completes the chosen client layers with kit's defaults.
//
// std, when not nil, configures the layers kit builds instead of their
// defaults; live collects their SetConfig calls for later changes.
func buildClientLayers(c layerChoice, logger *slog.Logger, std *config.Standard) (l clientLayers, live *appliers, err error) {
	if err := c.check(false); err != nil {
		return l, nil, err
	}
	if std == nil {
		d := config.DefaultStandard()
		std = &d
	}
	live = &appliers{}
	l = c.client
	if len(l.Dedupe) > 0 {
		if err := (dedupe.Config{Methods: l.Dedupe, TTL: duration.Duration(time.Minute), MaxEntries: 1}).Validate(); err != nil {
			return l, nil, fmt.Errorf("kit: WithDedupedMethods: %w", err)
		}
	}
	if !c.off(LayerTelemetry) && l.Telemetry == nil {
		// A client's own telemetry records metrics but exports no spans: a
		// *grpc.ClientConn gives kit no hook to flush an exporter when it
		// closes. Clients that should trace share a server's telemetry
		// (WithTelemetry); the caller's trace context passes through either way.
		cfg := telemetry.DefaultConfig()
		cfg.ServiceName = "grpckit-client"
		if l.Telemetry, err = telemetry.New(context.Background(), cfg, telemetry.WithLogger(logger), telemetry.WithEnv(noTraceExport)); err != nil {
			return l, nil, fmt.Errorf("kit: telemetry: %w", err)
		}
	}
	if c.off(LayerTelemetry) {
		l.Telemetry = nil
	}
	if c.off(LayerDedupe) {
		l.Dedupe = nil
	}
	mp := meterOf(l.Telemetry)
	fail := func(layer Layer, e error) (clientLayers, *appliers, error) {
		return l, nil, fmt.Errorf("kit: %s: %w", layer, e)
	}
	if build(c, LayerTimeout, &l.Timeout) {
		if l.Timeout, err = timeout.New(std.Timeout, timeout.WithLogger(logger), timeout.WithMeterProvider(mp)); err != nil {
			return fail(LayerTimeout, err)
		}
		live.add(section(std.Timeout, func(s *config.Standard) timeout.Config { return s.Timeout }, l.Timeout.SetConfig))
	}
	if build(c, LayerRetry, &l.Retry) {
		if l.Retry, err = retry.New(std.Retry, retry.WithLogger(logger), retry.WithMeterProvider(mp)); err != nil {
			return fail(LayerRetry, err)
		}
		live.add(section(std.Retry, func(s *config.Standard) retry.Config { return s.Retry }, l.Retry.SetConfig))
	}
	if build(c, LayerBreaker, &l.Breaker) {
		if l.Breaker, err = breaker.New(std.Breaker, breaker.WithLogger(logger), breaker.WithMeterProvider(mp)); err != nil {
			return fail(LayerBreaker, err)
		}
		live.add(section(std.Breaker, func(s *config.Standard) breaker.Config { return s.Breaker }, l.Breaker.SetConfig))
	}
	if build(c, LayerRateLimit, &l.RateLimit) {
		if l.RateLimit, err = ratelimit.NewClient(ratelimit.DefaultClientConfig(), ratelimit.WithLogger(logger), ratelimit.WithMeterProvider(mp)); err != nil {
			return fail(LayerRateLimit, err)
		}
	}
	return l, live, nil
}

// noTraceExport is the process environment with trace export turned off.
func noTraceExport(key string) string {
	if key == "OTEL_TRACES_EXPORTER" {
		return "none"
	}
	return os.Getenv(key)
}

// dialOptions installs l's stats handler and interceptors in kit's order.
func (l clientLayers) dialOptions() []grpc.DialOption {
	var unary []grpc.UnaryClientInterceptor
	var stream []grpc.StreamClientInterceptor
	if len(l.Dedupe) > 0 {
		unary = append(unary, dedupe.UnaryClientInterceptor(l.Dedupe...))
	}
	if l.Timeout != nil {
		unary, stream = append(unary, l.Timeout.UnaryClientInterceptor()), append(stream, l.Timeout.StreamClientInterceptor())
	}
	if l.Retry != nil {
		unary, stream = append(unary, l.Retry.UnaryClientInterceptor()), append(stream, l.Retry.StreamClientInterceptor())
	}
	if l.Breaker != nil {
		unary, stream = append(unary, l.Breaker.UnaryClientInterceptor()), append(stream, l.Breaker.StreamClientInterceptor())
	}
	if l.RateLimit != nil {
		unary, stream = append(unary, l.RateLimit.UnaryClientInterceptor()), append(stream, l.RateLimit.StreamClientInterceptor())
	}
	var opts []grpc.DialOption
	if len(unary) > 0 {
		opts = append(opts, grpc.WithChainUnaryInterceptor(chainUnaryClient(unary)))
	}
	if len(stream) > 0 {
		opts = append(opts, grpc.WithChainStreamInterceptor(stream...))
	}
	if l.Telemetry != nil {
		opts = append(opts, grpc.WithStatsHandler(l.Telemetry.ClientHandler()))
	}
	return opts
}

// meterOf is the meter provider of t's metrics, or one that records nothing.
func meterOf(t *telemetry.Telemetry) metric.MeterProvider {
	if t == nil {
		return noop.NewMeterProvider()
	}
	return t.MeterProvider()
}
