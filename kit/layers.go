package kit

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/logging"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/recovery"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

// Layer names a middleware layer, for [WithoutLayers] and [WithLayer].
type Layer string

// The layers of kit's chains; [layerTable] gives their order.
const (
	LayerTelemetry Layer = "telemetry"
	LayerRecovery  Layer = "recovery"
	LayerLogging   Layer = "logging"
	LayerRateLimit Layer = "ratelimit"
	LayerOverload  Layer = "overload"
	LayerTimeout   Layer = "timeout"
	LayerAuth      Layer = "auth"
	LayerDedupe    Layer = "dedupe"
	LayerRetry     Layer = "retry"
	LayerBreaker   Layer = "breaker"
)

// layerTable wires kit's default chains: per side, the layers outermost
// first. Telemetry is not in it: kit builds it apart (it is the meter
// provider every layer records to, and may be shared by a server and its
// clients). Its interceptors come first on the server; on the client its
// metrics come first and its spans last, one per attempt.
//
// Server: recovery, logging, retry (marks retried calls so that their own
// outgoing calls do not retry), ratelimit, overload (the concurrency limit:
// after the rate limits, so that calls over a rate never take a place),
// timeout, auth, dedupe.
// Client: dedupe (request ids, kept across retries), timeout, retry,
// overload (adaptive throttling: each attempt asks the throttle), breaker,
// ratelimit.
//
// Adding a layer: its package, one entry per side here, and its section in
// config.Standard when its settings are live (see kit/middleware's doc).
var layerTable = []layerDef{
	serverLayer(LayerRecovery, fixed(recovery.DefaultConfig), func(c recovery.Config, d deps) (*recovery.Recoverer, error) {
		return recovery.New(c, recovery.WithLogger(d.logger), recovery.WithMeterProvider(d.meter))
	}),
	serverLayer(LayerLogging, live(func(s *config.Standard) logging.Config { return s.Log.Access }), func(c logging.Config, d deps) (*logging.Logger, error) {
		return logging.New(c, logging.WithLogger(d.logger), logging.WithMeterProvider(d.meter))
	}),
	serverLayer(LayerRetry, live(func(s *config.Standard) retry.Config { return s.Retry }), newRetry),
	serverLayer(LayerRateLimit, live(func(s *config.Standard) ratelimit.Config { return s.RateLimit }), func(c ratelimit.Config, d deps) (*ratelimit.Limiter, error) {
		return ratelimit.New(c, ratelimit.WithLogger(d.logger), ratelimit.WithMeterProvider(d.meter))
	}),
	serverLayer(LayerOverload, live(func(s *config.Standard) overload.ServerConfig { return s.Overload.Server }), func(c overload.ServerConfig, d deps) (*overload.Server, error) {
		return overload.NewServer(c, overload.WithLogger(d.logger), overload.WithMeterProvider(d.meter))
	}),
	serverLayer(LayerTimeout, live(func(s *config.Standard) timeout.Config { return s.Timeout }), newTimeout),
	// Auth is on when the auth section has a key (or WithAuth gives one).
	serverLayer(LayerAuth, live(func(s *config.Standard) auth.Config { return s.Auth }), func(c auth.Config, d deps) (*auth.Authenticator, error) {
		if !c.Enabled() {
			return nil, nil // kit/service refuses to start without a key unless auth.disabled
		}
		return auth.New(c, auth.WithLogger(d.logger))
	}),
	serverLayer(LayerDedupe, fixed(dedupe.DefaultConfig), func(c dedupe.Config, d deps) (*dedupe.Cache, error) {
		return dedupe.New(c, dedupe.WithLogger(d.logger), dedupe.WithMeterProvider(d.meter))
	}),

	clientLayer[*dedupe.Stamper](LayerDedupe, none[dedupe.ClientConfig](), nil), // no default: WithDedupedMethods
	clientLayer(LayerTimeout, live(func(s *config.Standard) timeout.Config { return s.Timeout }), newTimeout),
	clientLayer(LayerRetry, live(func(s *config.Standard) retry.Config { return s.Retry }), newRetry),
	clientLayer(LayerOverload, live(func(s *config.Standard) overload.ClientConfig { return s.Overload.Client }), func(c overload.ClientConfig, d deps) (*overload.Client, error) {
		return overload.NewClient(c, overload.WithLogger(d.logger), overload.WithMeterProvider(d.meter))
	}),
	clientLayer(LayerBreaker, live(func(s *config.Standard) breaker.Config { return s.Breaker }), func(c breaker.Config, d deps) (*breaker.Breakers, error) {
		return breaker.New(c, breaker.WithLogger(d.logger), breaker.WithMeterProvider(d.meter))
	}),
	clientLayer(LayerRateLimit, fixed(ratelimit.DefaultClientConfig), func(c ratelimit.ClientConfig, d deps) (*ratelimit.ClientLimiter, error) {
		return ratelimit.NewClient(c, ratelimit.WithLogger(d.logger), ratelimit.WithMeterProvider(d.meter))
	}),
}

// Constructors used on both sides.
func newTimeout(c timeout.Config, d deps) (*timeout.Timeouts, error) {
	return timeout.New(c, timeout.WithLogger(d.logger), timeout.WithMeterProvider(d.meter))
}

func newRetry(c retry.Config, d deps) (*retry.Retrier, error) {
	return retry.New(c, retry.WithLogger(d.logger), retry.WithMeterProvider(d.meter))
}

// side is the side of a call a table entry serves.
type side uint8

const (
	serverSide side = iota
	clientSide
)

func (s side) String() string {
	if s == serverSide {
		return "server"
	}
	return "client"
}

// deps are what kit hands every layer constructor.
type deps struct {
	logger *slog.Logger
	meter  metric.MeterProvider
}

// layerDef is one entry of the layer table: a layer on one side. Made by
// [serverLayer] and [clientLayer], which keep it type-safe.
type layerDef struct {
	name Layer
	side side
	// build makes the layer with kit's defaults and the section of std;
	// nil when the layer has no default and is on only when given.
	build func(std *config.Standard, d deps) (any, error)
	// follow returns what keeps obj, built by kit, in step with the
	// configuration; nil when the layer's settings are not live.
	follow func(obj any, std *config.Standard) func(*config.Standard) error
	// accepts reports whether obj is of the layer's type, for WithLayer.
	accepts func(obj any) bool
	// typeName names the layer's type in errors.
	typeName string
	// server and client return the layer's interceptors (nil for a side it
	// does not serve, or a kind of call it leaves alone).
	unaryServer  func(obj any) grpc.UnaryServerInterceptor
	streamServer func(obj any) grpc.StreamServerInterceptor
	unaryClient  func(obj any) grpc.UnaryClientInterceptor
	streamClient func(obj any) grpc.StreamClientInterceptor
}

// section says where a layer's configuration comes from.
type section[C any] struct {
	pick func(*config.Standard) C // nil: the layer has no configuration kit knows
	live bool                     // changes of the section reach the layer
}

// live is a section of config.Standard that follows configuration changes.
func live[C any](pick func(*config.Standard) C) section[C] {
	return section[C]{pick: pick, live: true}
}

// fixed is a configuration that is not in config.Standard: kit builds the
// layer with def's defaults and leaves changes to the layer's owner.
func fixed[C any](def func() C) section[C] {
	return section[C]{pick: func(*config.Standard) C { return def() }}
}

// none is the section of a layer kit does not build.
func none[C any]() section[C] { return section[C]{} }

// entry fills what both sides share.
func entry[L any, C any](name Layer, s side, sec section[C], build func(C, deps) (L, error)) layerDef {
	d := layerDef{
		name:     name,
		side:     s,
		accepts:  func(obj any) bool { _, ok := obj.(L); return ok },
		typeName: fmt.Sprintf("%T", *new(L)),
	}
	if build != nil && sec.pick != nil {
		d.build = func(std *config.Standard, dp deps) (any, error) { return build(sec.pick(std), dp) }
	}
	if _, ok := any(*new(L)).(middleware.Configurable[C]); sec.live && !ok {
		panic(fmt.Sprintf("kit: layer table: %s is live but %s has no Config/SetConfig of its section", name, d.typeName))
	}
	if sec.live {
		d.follow = func(obj any, std *config.Standard) func(*config.Standard) error {
			l, ok := obj.(middleware.Configurable[C])
			if !ok {
				return nil
			}
			return followSection(sec.pick(std), sec.pick, l.SetConfig)
		}
	}
	return d
}

// serverLayer is a table entry for the server side of a layer of type L
// configured by a C.
func serverLayer[L middleware.ServerLayer, C any](name Layer, sec section[C], build func(C, deps) (L, error)) layerDef {
	d := entry(name, serverSide, sec, build)
	d.unaryServer = func(obj any) grpc.UnaryServerInterceptor { return obj.(L).UnaryServerInterceptor() }
	d.streamServer = func(obj any) grpc.StreamServerInterceptor { return obj.(L).StreamServerInterceptor() }
	return d
}

// clientLayer is a table entry for the client side of a layer of type L
// configured by a C.
func clientLayer[L middleware.ClientLayer, C any](name Layer, sec section[C], build func(C, deps) (L, error)) layerDef {
	d := entry(name, clientSide, sec, build)
	d.unaryClient = func(obj any) grpc.UnaryClientInterceptor { return obj.(L).UnaryClientInterceptor() }
	d.streamClient = func(obj any) grpc.StreamClientInterceptor { return obj.(L).StreamClientInterceptor() }
	return d
}

// layerChoice is what options said about the layers of one server or
// client: objects to use and layers to leave out. Layers in neither get
// kit's defaults.
type layerChoice struct {
	given   map[Layer]any
	without map[Layer]bool
	errs    []error // options that could not be taken (reported by NewServer / NewClient)
}

func (c *layerChoice) give(l Layer, obj any) {
	if c.given == nil {
		c.given = make(map[Layer]any)
	}
	c.given[l] = obj
}

type layerOption func(*layerChoice)

func (f layerOption) applyServer(o *serverOptions) { f(&o.layers) }
func (f layerOption) applyClient(o *clientOptions) { f(&o.layers) }

// WithLayer makes a server or client use obj as its layer l instead of one
// kit builds: for example WithLayer(LayerRateLimit, limiter) with a
// *ratelimit.Limiter on a server, a *ratelimit.ClientLimiter on a client.
// The caller keeps obj: configuration changes through WithConfig do not
// reach it. NewServer and NewClient fail when obj is not of the layer's type
// on that side, or when l is also turned off with WithoutLayers. A nil obj,
// or a nil pointer of any type, is ignored: the layer keeps kit's default,
// as when the option is not given.
func WithLayer(l Layer, obj any) Option {
	return layerOption(func(c *layerChoice) {
		if !isNil(obj) {
			c.give(l, obj)
		}
	})
}

// isNil reports whether obj is nil or holds a nil pointer, map, slice,
// func, channel or interface.
func isNil(obj any) bool {
	if obj == nil {
		return true
	}
	switch v := reflect.ValueOf(obj); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
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

// The typed forms of WithLayer for kit's own layers.

// WithRateLimit sets a server's inbound limits (default: none).
func WithRateLimit(r *ratelimit.Limiter) ServerOption { return WithLayer(LayerRateLimit, r) }

// WithOverload sets a server's concurrency limit (default:
// overload.DefaultServerConfig, an adaptive limit).
func WithOverload(o *overload.Server) ServerOption { return WithLayer(LayerOverload, o) }

// WithServerTimeouts sets a server's deadline cap (default: timeout.DefaultConfig).
func WithServerTimeouts(t *timeout.Timeouts) ServerOption { return WithLayer(LayerTimeout, t) }

// WithAuth checks bearer tokens on a server (default: an Authenticator of
// the auth section when it has a key, else no auth layer).
func WithAuth(a *auth.Authenticator) ServerOption { return WithLayer(LayerAuth, a) }

// WithDedupe sets a server's replay cache (default: dedupe.DefaultConfig,
// which deduplicates no method).
func WithDedupe(d *dedupe.Cache) ServerOption { return WithLayer(LayerDedupe, d) }

// WithAccessLog sets a server's access log (default: info level, on the
// server's logger).
func WithAccessLog(a *logging.Logger) ServerOption { return WithLayer(LayerLogging, a) }

// WithClientTimeouts sets a client's default and per-method deadlines
// (default: timeout.DefaultConfig, a 5s deadline for calls without one).
func WithClientTimeouts(t *timeout.Timeouts) ClientOption { return WithLayer(LayerTimeout, t) }

// WithRetry sets a client's retry policy and budget (default: retry.DefaultConfig).
func WithRetry(r *retry.Retrier) ClientOption { return WithLayer(LayerRetry, r) }

// WithThrottle sets a client's adaptive throttling (default:
// overload.DefaultClientConfig, on).
func WithThrottle(o *overload.Client) ClientOption { return WithLayer(LayerOverload, o) }

// WithBreaker sets a client's circuit breakers (default: breaker.DefaultConfig).
func WithBreaker(b *breaker.Breakers) ClientOption { return WithLayer(LayerBreaker, b) }

// WithClientRateLimit sets a client's outbound limits (default: none).
func WithClientRateLimit(r *ratelimit.ClientLimiter) ClientOption {
	return WithLayer(LayerRateLimit, r)
}

// WithDedupedMethods stamps a request id on calls to methods (full names or
// "/pkg.Service/*"), the same across retries, so that servers deduplicating
// those methods replay instead of running them twice, and the retry layer
// may retry them although they are not idempotent. Several uses add up; a
// malformed pattern makes NewClient fail.
func WithDedupedMethods(methods ...string) ClientOption {
	return layerOption(func(c *layerChoice) {
		var all []string
		if s, ok := c.given[LayerDedupe].(*dedupe.Stamper); ok {
			all = s.Config().Methods
		}
		s, err := dedupe.NewClient(dedupe.ClientConfig{Methods: append(all, methods...)})
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("kit: WithDedupedMethods: %w", err))
			return
		}
		c.give(LayerDedupe, s)
	})
}

// builtLayer is a layer of a built chain.
type builtLayer struct {
	def *layerDef
	obj any
}

// chain is the layers of one server or client, outermost first.
type chain struct {
	layers []builtLayer
}

// layer returns the object of layer l, nil when l is off.
func (c chain) layer(l Layer) any {
	for _, b := range c.layers {
		if b.def.name == l {
			return b.obj
		}
	}
	return nil
}

// layerAs returns layer l as a T, and whether it is on with that type.
func layerAs[T any](c chain, l Layer) (T, bool) {
	t, ok := c.layer(l).(T)
	return t, ok
}

// buildChain builds the layers of side s from the table, in the table's
// order: a given object, else kit's default made from std (nil: the
// defaults of every section), unless the layer is turned off. live
// collects the appliers of the layers kit built whose sections are live.
func buildChain(c layerChoice, s side, std *config.Standard, d deps) (ch chain, live *appliers, err error) {
	table := layerTable
	if err := c.check(table, s); err != nil {
		return chain{}, nil, err
	}
	if std == nil {
		def := config.DefaultStandard()
		std = &def
	}
	live = &appliers{}
	for i := range table {
		def := &table[i]
		if def.side != s || c.without[def.name] {
			continue
		}
		obj, given := c.given[def.name]
		if !given {
			if def.build == nil {
				continue
			}
			if obj, err = def.build(std, d); err != nil {
				return chain{}, nil, fmt.Errorf("kit: %s: %w", def.name, err)
			}
			if isNil(obj) {
				continue // off in this configuration
			}
			if def.follow != nil {
				if f := def.follow(obj, std); f != nil {
					live.add(f)
				}
			}
		}
		ch.layers = append(ch.layers, builtLayer{def: def, obj: obj})
	}
	return ch, live, nil
}

// check refuses what the options got wrong: an option error, an unknown
// layer name, a given object of the wrong type for side s, and a layer both
// given and turned off (a silent unauthenticated server is worse than an
// error).
func (c *layerChoice) check(table []layerDef, s side) error {
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	known := func(l Layer) bool {
		return l == LayerTelemetry || slices.ContainsFunc(table, func(d layerDef) bool { return d.name == l })
	}
	for l := range c.without {
		if !known(l) {
			return fmt.Errorf("kit: WithoutLayers: unknown layer %q", l)
		}
		if _, ok := c.given[l]; ok {
			return fmt.Errorf("kit: layer %q is both given and turned off by WithoutLayers", l)
		}
	}
	for l, obj := range c.given {
		if l == LayerTelemetry {
			if _, ok := obj.(*telemetry.Telemetry); !ok {
				return fmt.Errorf("kit: WithLayer(%q): needs a *telemetry.Telemetry, got %T", l, obj)
			}
			continue
		}
		i := slices.IndexFunc(table, func(d layerDef) bool { return d.name == l && d.side == s })
		switch {
		case !known(l):
			return fmt.Errorf("kit: WithLayer: unknown layer %q", l)
		case i < 0:
			return fmt.Errorf("kit: WithLayer: layer %q has no %s side", l, s)
		case !table[i].accepts(obj):
			return fmt.Errorf("kit: WithLayer(%q): a %s needs a %s, got %T", l, s, table[i].typeName, obj)
		}
	}
	return nil
}

// serverOptions installs the chain's interceptors in order, after tel's
// (nil: telemetry off).
func (c chain) serverOptions(tel *telemetry.Telemetry) []grpc.ServerOption {
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if tel != nil {
		if u := tel.UnaryServerInterceptor(); u != nil {
			unary = append(unary, u)
		}
		if s := tel.StreamServerInterceptor(); s != nil {
			stream = append(stream, s)
		}
	}
	for _, b := range c.layers {
		if u := b.def.unaryServer(b.obj); u != nil {
			unary = append(unary, u)
		}
		if s := b.def.streamServer(b.obj); s != nil {
			stream = append(stream, s)
		}
	}
	var opts []grpc.ServerOption
	if len(unary) > 0 {
		opts = append(opts, grpc.ChainUnaryInterceptor(chainUnaryServer(unary)))
	}
	if len(stream) > 0 {
		opts = append(opts, grpc.ChainStreamInterceptor(stream...))
	}
	return opts
}

// dialOptions installs the chain's interceptors in order, between tel's
// (nil: telemetry off): its metrics first, its spans and trace-context
// propagation last, per attempt.
func (c chain) dialOptions(tel *telemetry.Telemetry) []grpc.DialOption {
	var unary []grpc.UnaryClientInterceptor
	var stream []grpc.StreamClientInterceptor
	if tel != nil {
		if u := tel.UnaryClientInterceptor(); u != nil {
			unary = append(unary, u)
		}
		if s := tel.StreamClientInterceptor(); s != nil {
			stream = append(stream, s)
		}
	}
	for _, b := range c.layers {
		if u := b.def.unaryClient(b.obj); u != nil {
			unary = append(unary, u)
		}
		if s := b.def.streamClient(b.obj); s != nil {
			stream = append(stream, s)
		}
	}
	if tel != nil {
		unary = append(unary, tel.UnaryAttemptInterceptor())
		stream = append(stream, tel.StreamAttemptInterceptor())
	}
	var opts []grpc.DialOption
	if len(unary) > 0 {
		opts = append(opts, grpc.WithChainUnaryInterceptor(chainUnaryClient(unary)))
	}
	if len(stream) > 0 {
		opts = append(opts, grpc.WithChainStreamInterceptor(stream...))
	}
	return opts
}
