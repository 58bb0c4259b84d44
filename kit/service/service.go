package service

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
)

// Service is a service being started or running: its configuration,
// logger, registry and server. setup receives it; its methods are safe for
// concurrent use.
type Service[T any] struct {
	// Name is the service's name: in Consul, telemetry and the Consul key.
	Name string
	// Config is the live configuration.
	Config *config.Store[T]
	// Logger is the service's logger; its level follows log.level.
	Logger *slog.Logger
	// Registry is the Consul registry; nil when registry.address is "off".
	Registry *consul.Registry
	// Server is the kit server; register the gRPC services on it in setup.
	Server *kit.Server

	mu        sync.Mutex
	clients   []*grpc.ClientConn                // closed after the server stopped; guarded by mu
	listeners []*listener                       // guarded by mu
	stops     []func(ctx context.Context) error // OnStop hooks; guarded by mu
}

// listener is an extra listener served beside gRPC.
type listener struct {
	name string
	lis  net.Listener
	http *http.Server
}

// Value returns the current configuration.
func (s *Service[T]) Value() T { return s.Config.Current().Value }

// Client returns a kit client for target (consul:///name or any grpc-go
// target) configured by the standard sections and following their changes,
// discovering through the registry, sharing the server's telemetry (one
// trace spans the incoming call and the outgoing ones) and shown on the
// server's /debug/kit. It is closed after the server stopped; opts come
// after the service's own and win.
//
// Its calls propagate identities ([auth.Forward]): a call made with the
// context of an incoming call carries that call's verified token, so the
// service called sees the original caller; a call made for an anonymous
// call (of a public method) carries none; a call outside any incoming call
// (a background job) carries the service's own identity, a token with the
// subject "service:<name>" signed with the current auth.hmac_secret, when
// there is one.
// Give kit.WithPerRPCCredentials in opts to send another token instead, and
// use this client only for the services of your own deployment: it hands
// them your callers' tokens.
func (s *Service[T]) Client(target string, opts ...kit.ClientOption) (*grpc.ClientConn, error) {
	o := []kit.ClientOption{kit.WithConfig(s.Config), kit.WithLogger(s.Logger), kit.WithAdminOf(s.Server),
		kit.WithTelemetry(s.Server.Telemetry()),
		kit.WithPerRPCCredentials(auth.Forward(auth.ServiceToken(func() auth.Config { return s.Config.Standard().Auth }, s.Name)))}
	if s.Registry != nil {
		o = append(o, kit.WithDiscovery(s.Registry))
	}
	cc, err := kit.NewClient(target, append(o, opts...)...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.clients = append(s.clients, cc)
	s.mu.Unlock()
	return cc, nil
}

// HTTP listens on addr at once and serves hs there once the service runs
// (hs.Handler and its timeouts are the caller's). The address is returned,
// logged, and registered in the instance's Meta under name (as reachable
// host:port) unless registry.meta sets that key. On shutdown keep-alives
// stop when the drain begins, and hs shuts down gracefully after the drain,
// before gRPC stops.
func (s *Service[T]) HTTP(name, addr string, hs *http.Server) (net.Addr, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service: %s listener: %w", name, err)
	}
	if hs.ErrorLog == nil {
		hs.ErrorLog = slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn)
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, &listener{name: name, lis: lis, http: hs})
	s.mu.Unlock()
	return lis.Addr(), nil
}

// OnStop adds f to the end of the shutdown, after the server and the
// clients stopped: the place to close stores. Hooks run in reverse order of
// addition with the shutdown's context; their errors are returned by Run.
func (s *Service[T]) OnStop(f func(ctx context.Context) error) {
	s.mu.Lock()
	s.stops = append(s.stops, f)
	s.mu.Unlock()
}

// Option configures [Run] and [Main].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	readyFile  string
	args       []string
	output     io.Writer
	serverOpts []kit.ServerOption
	configOpts []config.Option
}

// WithArgs sets the command-line arguments (default os.Args[1:]).
func WithArgs(args []string) Option { return optionFunc(func(o *options) { o.args = args }) }

// WithReadyFile makes the service write a [Ready] report as JSON to path
// once it serves (and is registered): the addresses it listens on, which
// is how a supervisor that starts it on port 0 learns them. The file is
// replaced atomically. Default: the environment variable GRPCKIT_READY_FILE,
// else no report.
func WithReadyFile(path string) Option { return optionFunc(func(o *options) { o.readyFile = path }) }

// Ready is the report of [WithReadyFile].
type Ready struct {
	Service string `json:"service"`
	PID     int    `json:"pid"`
	// GRPC and Admin are the listeners' addresses; Admin is "" when off.
	GRPC  string `json:"grpc"`
	Admin string `json:"admin"`
	// Listeners are the extra listeners' addresses by name ([Service.HTTP]).
	Listeners map[string]string `json:"listeners"`
}

// WithOutput sets where logs, -h and -print-config go (default os.Stderr).
func WithOutput(w io.Writer) Option { return optionFunc(func(o *options) { o.output = w }) }

// WithServerOptions adds options to the kit server, after the service's own.
func WithServerOptions(opts ...kit.ServerOption) Option {
	return optionFunc(func(o *options) { o.serverOpts = append(o.serverOpts, opts...) })
}

// WithConfigOptions adds options to the configuration's loading (e.g.
// config.WithEnv in tests).
func WithConfigOptions(opts ...config.Option) Option {
	return optionFunc(func(o *options) { o.configOpts = append(o.configOpts, opts...) })
}

// Main runs the service with [Run] until SIGINT or SIGTERM and exits the
// process: 0 after a clean shutdown, -h or -print-config, 1 on an error
// (logged). With the only argument pair "-probe URL" it GETs URL and exits
// 0 on a 2xx answer, 1 otherwise (container health checks).
func Main[T any](name string, defaults T, setup func(*Service[T]) error, opts ...Option) {
	if len(os.Args) == 3 && (os.Args[1] == "-probe" || os.Args[1] == "--probe") {
		os.Exit(probe(os.Args[2], os.Stderr))
	}
	err := Run(context.Background(), name, defaults, setup, opts...)
	switch {
	case err == nil, errors.Is(err, config.ErrPrinted), errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		slog.New(slog.NewTextHandler(os.Stderr, nil)).Error(name+" stopped", "error", err)
		os.Exit(1)
	}
}

// Run loads the configuration, builds the service, calls setup, serves
// until ctx ends or the process gets SIGINT or SIGTERM, and shuts down in
// order (see the package documentation). It returns the errors of the
// start, of serving and of the shutdown; after -h or -print-config it
// returns an error matching flag.ErrHelp or config.ErrPrinted and serves
// nothing.
func Run[T any](ctx context.Context, name string, defaults T, setup func(*Service[T]) error, opts ...Option) (err error) {
	o := options{args: os.Args[1:], output: os.Stderr, readyFile: os.Getenv("GRPCKIT_READY_FILE")}
	for _, opt := range opts {
		opt.apply(&o)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(o.output)
	boot := slog.New(slog.NewTextHandler(o.output, nil))
	store, err := config.Load(name, defaults, append([]config.Option{config.WithFlags(fs, o.args),
		config.WithLogger(boot), config.WithOutput(o.output)}, o.configOpts...)...)
	if err != nil {
		return err
	}
	s := &Service[T]{Name: name, Config: store}
	serving := false
	defer func() {
		if err != nil && !serving { // a failed start: release what was made
			err = errors.Join(err, s.release(context.Background(), false))
		}
	}()
	if s.Logger, err = store.Logger(o.output); err != nil {
		return fmt.Errorf("service: logger: %w", err)
	}
	std := store.Standard()
	if err := checkAuth(std.Auth, s.Logger); err != nil {
		return err
	}
	if !std.Registry.ConsulOff() {
		c, err := config.NewConsulClient(std.Registry)
		if err != nil {
			return fmt.Errorf("service: consul client: %w", err)
		}
		s.Registry = consul.New(c, consul.WithLogger(s.Logger))
		// A token Consul refuses fails the start here, with an error that
		// says so, rather than as an empty instance set later. An
		// unreachable Consul is the registration's business.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cerr := s.Registry.CheckToken(cctx)
		cancel()
		if errors.Is(cerr, consul.ErrACLRefused) {
			return fmt.Errorf("service: %w", cerr)
		}
	}
	sopts := []kit.ServerOption{kit.WithServiceName(name), kit.WithConfig(store), kit.WithLogger(s.Logger),
		kit.WithBeforeStop(s.stopListeners)}
	if o.readyFile != "" {
		sopts = append(sopts, kit.WithOnServing(func(grpcAddr, adminAddr net.Addr) { s.report(o.readyFile, grpcAddr, adminAddr) }))
	}
	if s.Registry != nil {
		r := std.Registry
		sopts = append(sopts, kit.WithRegistrar(metaRegistrar[T]{s}, registry.Instance{
			Name: name, Address: r.Advertise, Tags: r.Tags, Meta: r.Meta, Weights: r.Weights,
		}))
	}
	if s.Server, err = kit.NewServer(append(sopts, o.serverOpts...)...); err != nil {
		return err
	}
	if err := setup(s); err != nil {
		return fmt.Errorf("service: setup: %w", err)
	}
	serving = true
	return s.serve(ctx)
}

// checkAuth refuses a service that would accept anonymous calls by
// accident: its auth section needs a key, or disabled: true.
func checkAuth(a auth.Config, logger *slog.Logger) error {
	switch {
	case a.Disabled:
		logger.Warn("auth.disabled is true: every method is callable without a token")
	case !a.Enabled():
		return errors.New("service: auth: no key to verify tokens with, so every call would be refused: " +
			"set auth.hmac_secret (env GRPCKIT_AUTH_HMAC_SECRET) or auth.public_key_files, " +
			"or auth.disabled: true to serve without authentication")
	}
	return nil
}

// serve runs the server and the extra listeners until ctx ends, a signal
// arrives or one of them fails, then shuts everything down.
func (s *Service[T]) serve(ctx context.Context) error {
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	runCtx, cancel := context.WithCancelCause(sigCtx)
	defer cancel(nil)
	s.mu.Lock()
	listeners := slices.Clone(s.listeners)
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(listeners))
	for i, l := range listeners {
		s.Logger.Info("serving "+l.name, "address", l.lis.Addr().String())
		wg.Go(func() {
			if err := l.http.Serve(l.lis); !errors.Is(err, http.ErrServerClosed) {
				errs[i] = fmt.Errorf("service: %s: %w", l.name, err)
				cancel(errs[i]) // stops the server too
			}
		})
	}
	// When the shutdown begins, keep-alives stop at once so that clients
	// open new connections elsewhere while the server drains.
	draining := make(chan struct{})
	go func() {
		defer close(draining)
		<-runCtx.Done()
		stopSignals() // a second signal kills the process the default way
		for _, l := range listeners {
			l.http.SetKeepAlivesEnabled(false)
		}
	}()
	runErr := s.Server.Run(runCtx) // shuts the server (and, before it, the listeners) down on any return
	cancel(nil)
	<-draining
	wg.Wait()
	return errors.Join(runErr, errors.Join(errs...), s.release(context.Background(), true))
}

// stopListeners shuts the extra listeners down gracefully; the server calls
// it after the drain.
func (s *Service[T]) stopListeners(ctx context.Context) error {
	s.mu.Lock()
	listeners := slices.Clone(s.listeners)
	s.mu.Unlock()
	var errs []error
	for _, l := range listeners {
		if err := l.http.Shutdown(ctx); err != nil {
			l.http.Close()
			errs = append(errs, fmt.Errorf("service: %s shutdown: %w", l.name, err))
		}
	}
	if len(listeners) > 0 {
		s.Logger.Info("extra listeners stopped")
	}
	return errors.Join(errs...)
}

// release closes what the service holds once the server stopped (or never
// served: started is false, and the server is shut down here).
func (s *Service[T]) release(ctx context.Context, started bool) error {
	var errs []error
	timeout := 15 * time.Second
	if s.Config != nil {
		timeout = time.Duration(s.Config.Standard().Server.ShutdownTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if s.Server != nil && !started {
		errs = append(errs, s.Server.Shutdown(ctx))
	}
	s.mu.Lock()
	clients, listeners, stops := s.clients, s.listeners, s.stops
	s.clients, s.listeners, s.stops = nil, nil, nil
	s.mu.Unlock()
	if !started {
		for _, l := range listeners {
			l.lis.Close()
		}
	}
	for _, cc := range slices.Backward(clients) {
		cc.Close()
	}
	for _, f := range slices.Backward(stops) {
		errs = append(errs, f(ctx))
	}
	if s.Registry != nil {
		s.Registry.Close()
	}
	if s.Config != nil {
		s.Config.Close()
	}
	return errors.Join(errs...)
}

// metaRegistrar registers the instance with the addresses of the extra
// listeners in its Meta, under their names, unless the Meta has the key.
type metaRegistrar[T any] struct{ s *Service[T] }

func (m metaRegistrar[T]) Register(ctx context.Context, inst registry.Instance) error {
	m.s.mu.Lock()
	listeners := slices.Clone(m.s.listeners)
	m.s.mu.Unlock()
	if len(listeners) > 0 {
		inst.Meta = maps.Clone(inst.Meta)
		if inst.Meta == nil {
			inst.Meta = map[string]string{}
		}
		advertise := m.s.Config.Standard().Registry.Advertise
		for _, l := range listeners {
			if _, ok := inst.Meta[l.name]; !ok {
				inst.Meta[l.name] = reachable(advertise, l.lis.Addr())
			}
		}
	}
	return m.s.Registry.Register(ctx, inst)
}

func (m metaRegistrar[T]) Deregister(ctx context.Context, inst registry.Instance) error {
	return m.s.Registry.Deregister(ctx, inst)
}

// reachable returns the host:port others reach addr at: the host is
// advertise when set, else the host kit registers for addr.
func reachable(advertise string, addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	port := strconv.Itoa(tcp.Port)
	if advertise != "" {
		return net.JoinHostPort(advertise, port)
	}
	return net.JoinHostPort(kit.AdvertiseHost(tcp.IP), port)
}

// probe GETs url: 0 on a 2xx answer, 1 otherwise.
func probe(url string, stderr io.Writer) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(stderr, "probe:", resp.Status)
		return 1
	}
	return 0
}

// report writes the Ready report to path, atomically; a failure is logged.
func (s *Service[T]) report(path string, grpcAddr, adminAddr net.Addr) {
	r := Ready{Service: s.Name, PID: os.Getpid(), GRPC: grpcAddr.String(), Listeners: map[string]string{}}
	if adminAddr != nil {
		r.Admin = adminAddr.String()
	}
	s.mu.Lock()
	for _, l := range s.listeners {
		r.Listeners[l.name] = l.lis.Addr().String()
	}
	s.mu.Unlock()
	b, err := json.Marshal(r)
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		s.Logger.Error("service: ready report", "path", path, "error", err)
	}
}
