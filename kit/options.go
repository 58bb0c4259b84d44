package kit

import (
	"context"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/registry"
)

// ServerOption configures [NewServer].
type ServerOption interface{ applyServer(*serverOptions) }

// ClientOption configures [NewClient].
type ClientOption interface{ applyClient(*clientOptions) }

// Option configures both servers and clients.
type Option interface {
	ServerOption
	ClientOption
}

type serverOptionFunc func(*serverOptions)

func (f serverOptionFunc) applyServer(o *serverOptions) { f(o) }

type clientOptionFunc func(*clientOptions)

func (f clientOptionFunc) applyClient(o *clientOptions) { f(o) }

type serverOptions struct {
	address         string
	adminAddress    string
	registrar       registry.Registrar
	instance        registry.Instance
	drain           time.Duration
	shutdownTimeout time.Duration
	maxStreams      uint32
	pprof           bool
	reflection      bool
	registerTimeout time.Duration
	beforeStop      []func(context.Context) error
	onServing       []func(grpcAddr, adminAddr net.Addr)
	grpcOptions     []grpc.ServerOption
	logger          *slog.Logger
	layers          layerChoice
	serviceName     string
	config          *liveConfig
	historyWindow   time.Duration // 0: no history on /debug/kit
	historyStep     time.Duration
}

// defaultServerOptions are the server section's defaults (config.Standard
// documents them) and the registration timeout.
func defaultServerOptions() serverOptions {
	o := serverOptions{registerTimeout: 10 * time.Second, historyWindow: DefaultHistoryWindow, historyStep: DefaultHistoryStep}
	o.setServerSection(config.DefaultStandard().Server)
	return o
}

// setServerSection takes the settings of a server section.
func (o *serverOptions) setServerSection(s config.Server) {
	o.address = s.Listen
	o.adminAddress = s.Admin
	o.drain = time.Duration(s.Drain)
	o.shutdownTimeout = time.Duration(s.ShutdownTimeout)
	o.maxStreams = s.MaxConcurrentStreams
	o.pprof = s.Pprof
	o.reflection = s.Reflection
}

type clientOptions struct {
	discovery   registry.Discovery
	creds       credentials.TransportCredentials
	perRPC      credentials.PerRPCCredentials
	dialOptions []grpc.DialOption
	logger      *slog.Logger
	layers      layerChoice
	config      *liveConfig
	admin       *Server           // shows the client on its /debug/kit
	monitor     *balancer.Monitor // the client's balancer reports to it
}

// WithServiceName names the service in telemetry (traces and metrics) when
// no registrar names it. Default: the WithRegistrar instance's Name, else
// "grpckit".
func WithServiceName(name string) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.serviceName = name })
}

// WithAddress sets the address [Server.Run] listens on. Default 127.0.0.1:0
// (loopback, any free port); use ":port" to listen on every interface.
func WithAddress(addr string) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.address = addr })
}

// WithAdminAddress sets the address of the admin HTTP listener. Default
// 127.0.0.1:0; the empty string turns the admin listener off.
func WithAdminAddress(addr string) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.adminAddress = addr })
}

// WithDebugHistory sets the history that /debug/kit draws and returns
// ([DebugHistory]): a sample every step, the last window of them kept.
// Default [DefaultHistoryWindow] at [DefaultHistoryStep] (300 samples);
// a window of 0 turns the history off. [NewServer] refuses a step shorter
// than [MinHistoryStep] (100 ms) or a window shorter than its step. Memory is a fixed ring of
// window/step values (8 bytes each, at most 10,000 of them) per series: four
// series per kit_weighted endpoint, four for the server, one per breaker
// and throttle; the series of endpoints gone for a window are dropped.
// Whatever the churn of addresses and clients, the history keeps at most
// 1,000 endpoints in all and 200 per balancer, 32 balancers and 64 clients:
// past a bound, a newcomer replaces the subject seen longest ago, or is left
// out while all of them are current. That is about 10 MB at most at the
// default window and step (breakers and throttles, one series per method
// or target called, come on top), and 33 times that with 10,000 samples. The
// samples are taken by a goroutine of the admin listener, which reads the
// counters the page reads, so no call pays for them; without an admin
// listener there is no history.
func WithDebugHistory(window, step time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.historyWindow, o.historyStep = window, step })
}

// WithRegistrar registers the server in r once it serves. inst names the
// service (Name is required) and may carry Tags, Meta and Weights; an empty
// Address or Port is taken from the listener (an unspecified listen host is
// replaced by the first non-loopback IPv4 address of the machine, else
// 127.0.0.1), an empty ID becomes "<name>-<address>-<port>".
func WithRegistrar(r registry.Registrar, inst registry.Instance) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		o.registrar = r
		o.instance = inst
	})
}

// WithDrain sets how long a shutting-down server keeps serving after it left
// the registry, so that watching clients stop sending to it first. Default 3s;
// 0 skips the drain.
func WithDrain(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.drain = max(d, 0) })
}

// WithPprof mounts net/http/pprof's /debug/pprof/ on the admin listener
// (config.Server.Pprof; default off: its cmdline page shows the command
// line, secrets given as flags included, to whoever reaches the admin
// address).
func WithPprof(on bool) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.pprof = on })
}

// WithReflection registers gRPC server reflection (config.Server.Reflection;
// default off: it lists every method and message of the server to anyone
// who can connect, which helps an attacker more than a client that has the
// protos). The local stack (grpckit dev) turns it on for grpcurl.
func WithReflection(on bool) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.reflection = on })
}

// WithMaxConcurrentStreams caps the calls one client connection may have
// open at once (config.Server.MaxConcurrentStreams; default 1000). A
// grpc.MaxConcurrentStreams passed to [WithGRPCServerOptions] wins.
func WithMaxConcurrentStreams(n uint32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxStreams = max(n, 1) })
}

// WithBeforeStop adds f to the shutdown sequence after the drain window and
// before the gRPC server stops, with the shutdown's context: the place to
// stop what serves beside the server (an HTTP API on another listener), so
// that its last requests finish before the telemetry is flushed. Hooks run
// in the order given; an error is reported by Shutdown, and the sequence
// goes on.
func WithBeforeStop(f func(ctx context.Context) error) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		if f != nil {
			o.beforeStop = append(o.beforeStop, f)
		}
	})
}

// WithOnServing adds f to what Serve does once the server serves and, with
// a registrar, is registered: f gets the gRPC listener's address and the
// admin listener's (nil when it is off). A process that listens on port 0
// reports the addresses it got this way. Hooks run in the order given, on
// Serve's goroutine; they must not block.
func WithOnServing(f func(grpcAddr, adminAddr net.Addr)) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		if f != nil {
			o.onServing = append(o.onServing, f)
		}
	})
}

// WithShutdownTimeout bounds the whole shutdown that [Server.Run] performs on a
// signal or cancellation (drain included). Default 15s.
func WithShutdownTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		if d > 0 {
			o.shutdownTimeout = d
		}
	})
}

// WithGRPCServerOptions adds options to the underlying grpc.Server.
func WithGRPCServerOptions(opts ...grpc.ServerOption) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.grpcOptions = append(o.grpcOptions, opts...) })
}

// WithDiscovery makes consul:/// targets resolve through d instead of the
// Consul agent of the environment (CONSUL_HTTP_ADDR).
func WithDiscovery(d registry.Discovery) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.discovery = d })
}

// WithTransportCredentials sets the client's transport credentials. Default:
// plaintext (insecure.NewCredentials()).
func WithTransportCredentials(c credentials.TransportCredentials) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.creds = c })
}

// WithDialOptions adds grpc.DialOptions after kit's own, so they take
// precedence (e.g. grpc.WithDefaultServiceConfig).
func WithDialOptions(opts ...grpc.DialOption) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.dialOptions = append(o.dialOptions, opts...) })
}

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) applyServer(so *serverOptions) { so.logger = o.l }
func (o loggerOption) applyClient(co *clientOptions) { co.logger = o.l }

// WithLogger sets the logger for lifecycle events. Default: slog.Default() for
// servers, discard for clients. A client's logger also gets its kit_weighted
// balancer's events (demotions, ejections, panic mode), which without it go
// to slog.Default().
func WithLogger(l *slog.Logger) Option { return loggerOption{l} }

// WithServerCredentials sets a server's transport credentials (TLS or mTLS:
// auth.ServerTLS). Default: plaintext.
func WithServerCredentials(creds credentials.TransportCredentials) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.grpcOptions = append(o.grpcOptions, grpc.Creds(creds)) })
}

// WithPerRPCCredentials attaches credentials to every call of a client, e.g.
// auth.BearerToken; the last one given wins (a client sends one token), so
// that it replaces the identity forwarding of kit/service's clients.
func WithPerRPCCredentials(creds credentials.PerRPCCredentials) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.perRPC = creds })
}
