package kit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/registry"
)

// ErrServerClosed is returned by [Server.Serve] and [Server.Run] when the
// server was shut down before it started serving.
var ErrServerClosed = errors.New("kit: server closed")

// ErrServing is returned by [Server.Serve] and [Server.Run] when the server
// is already serving.
var ErrServing = errors.New("kit: server already serving")

// Server is a gRPC server with health, reflection (opt-in), an admin listener and
// registry lifecycle. It implements grpc.ServiceRegistrar: register services
// before calling Serve or Run. Its methods are safe for concurrent use.
type Server struct {
	opts      serverOptions
	chain     chain                // the middleware layers, outermost first
	telemetry *telemetry.Telemetry // nil when the layer is off
	owned     *telemetry.Telemetry // telemetry kit made; flushed last by Shutdown
	grpc      *grpc.Server
	health    *health.Server
	admin     *http.Server // nil when the admin listener is off
	ready     atomic.Bool  // serving and not shutting down; /readyz

	stopping context.Context // done once Shutdown starts
	stop     context.CancelFunc

	shutdownOnce    sync.Once
	unsubscribe     func()              // stops configuration changes; nil without WithConfig
	service         string              // name in telemetry and on /debug/kit
	balancerMetrics metric.Registration // the balancers on /metrics; nil without telemetry
	debug           debugClients        // clients shown on /debug/kit
	history         *history            // samples of /debug/kit; nil when off
	shutdownDone    chan struct{}       // closed when the shutdown sequence finished

	servicesOnce sync.Once
	services     map[string]bool // the registered services, for unknownMethod; set by servicesOnce
	shutdownErr  error           // result of the sequence; written before shutdownDone closes

	mu         sync.Mutex
	serving    bool               // Serve was called; guarded by mu
	lis        net.Listener       // guarded by mu
	adminLis   net.Listener       // guarded by mu
	registered *registry.Instance // instance to deregister on shutdown; guarded by mu
	// stopHistory stops the history's sampler and waits for it; nil while
	// none runs. Guarded by mu.
	stopHistory func()
}

var _ grpc.ServiceRegistrar = (*Server)(nil)

// NewServer returns a server configured by opts. It does not listen yet.
func NewServer(opts ...ServerOption) (*Server, error) {
	o := defaultServerOptions()
	// WithConfig first: the options given explicitly win, whatever their order.
	for _, opt := range opts {
		if _, ok := opt.(configOption); ok {
			opt.applyServer(&o)
		}
	}
	for _, opt := range opts {
		if _, ok := opt.(configOption); !ok {
			opt.applyServer(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.registrar != nil && o.instance.Name == "" {
		return nil, errors.New("kit: WithRegistrar needs an instance with a Name")
	}
	service := o.serviceName
	if service == "" {
		service = o.instance.Name
	}
	if service == "" {
		service = "grpckit"
	}
	std, err := o.config.sections()
	if err != nil {
		return nil, err
	}
	if err := o.layers.check(layerTable, serverSide); err != nil {
		return nil, err
	}
	if w, st := o.historyWindow, o.historyStep; w < 0 || w > 0 && (st < MinHistoryStep || w < st) {
		return nil, fmt.Errorf("kit: debug history of %v at a step of %v: want a window of 0, or at least one step of at least %v",
			w, st, MinHistoryStep)
	}
	tel, owned, err := serverTelemetry(o.layers, service, o.logger, std)
	if err != nil {
		return nil, err
	}
	ch, live, err := buildChain(o.layers, serverSide, std, deps{logger: o.logger, meter: meterOf(tel)})
	if err != nil {
		if owned != nil {
			owned.Shutdown(context.Background())
		}
		return nil, err
	}
	var s *Server
	gopts := append(ch.serverOptions(tel), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error { return s.unknownMethod(ss) }))
	s = &Server{
		service:      service,
		opts:         o,
		chain:        ch,
		telemetry:    tel,
		owned:        owned,
		grpc:         grpc.NewServer(append(append(gopts, streamWorkers(), grpc.MaxConcurrentStreams(o.maxStreams)), o.grpcOptions...)...),
		health:       health.NewServer(),
		shutdownDone: make(chan struct{}),
		history:      newHistory(o.historyWindow, o.historyStep),
	}
	s.stopping, s.stop = context.WithCancel(context.Background())
	if o.config != nil {
		s.unsubscribe = o.config.follow(live, o.logger)
	}
	if tel != nil {
		if s.balancerMetrics, err = observeBalancers(tel.MeterProvider(), s.debug.balancers); err != nil {
			if s.unsubscribe != nil {
				s.unsubscribe()
			}
			if owned != nil {
				owned.Shutdown(context.Background())
			}
			return nil, err
		}
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if o.reflection {
		reflection.Register(s.grpc)
	}
	if o.adminAddress != "" {
		s.admin = &http.Server{Handler: s.adminMux(), ReadHeaderTimeout: 5 * time.Second}
	}
	return s, nil
}

// RegisterService registers a gRPC service implementation; see grpc.ServiceRegistrar.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
}

// Layer returns the object of the server's layer l (for example a
// *ratelimit.Limiter for [LayerRateLimit]; change it at run time with its
// SetConfig), or nil when the layer is off.
func (s *Server) Layer(l Layer) any {
	if l == LayerTelemetry {
		if s.telemetry == nil {
			return nil
		}
		return s.telemetry
	}
	return s.chain.layer(l)
}

// LayerOf returns the object of srv's layer l as a T, and whether the layer
// is on with that type: kit.LayerOf[*ratelimit.Limiter](srv, kit.LayerRateLimit).
func LayerOf[T any](srv *Server, l Layer) (T, bool) {
	t, ok := srv.Layer(l).(T)
	return t, ok
}

// Telemetry returns the server's telemetry, nil when the layer is off. Give
// it to the clients the server's handlers use ([WithTelemetry]).
func (s *Server) Telemetry() *telemetry.Telemetry { return s.telemetry }

// GRPCServer returns the underlying grpc.Server.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Addr returns the address the server listens on, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// AdminAddr returns the address of the admin listener, or nil when it is off
// or not started.
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminLis == nil {
		return nil
	}
	return s.adminLis.Addr()
}

// Serve serves gRPC on lis and the admin listener on its own address, sets
// health to SERVING and registers the server when a registrar is configured.
// It blocks until the server stops and returns nil after [Server.Shutdown].
// A failed registration stops the server and is returned. Serve closes lis.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	switch {
	case s.stopping.Err() != nil:
		s.mu.Unlock()
		lis.Close()
		return ErrServerClosed
	case s.serving:
		s.mu.Unlock()
		lis.Close()
		return ErrServing
	}
	s.serving, s.lis = true, lis
	s.mu.Unlock()

	if err := s.startAdmin(); err != nil {
		lis.Close()
		s.notServing()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.mu.Lock()
	s.ready.Store(s.stopping.Err() == nil) // under mu: Shutdown clears it after setting stopping
	s.mu.Unlock()
	s.opts.logger.LogAttrs(context.Background(), slog.LevelInfo, "serving gRPC", slog.String("address", lis.Addr().String()))

	if s.opts.registrar != nil {
		if err := s.register(lis.Addr()); err != nil {
			if s.stopping.Err() != nil { // Shutdown interrupted the registration.
				<-errc
				return nil
			}
			s.ready.Store(false)
			s.grpc.Stop()
			<-errc
			s.closeAdmin()
			s.notServing()
			return err
		}
	}
	for _, f := range s.opts.onServing {
		f(lis.Addr(), s.AdminAddr())
	}
	err := <-errc
	if err == nil || s.stopping.Err() != nil {
		// grpc.Serve returns nil after GracefulStop/Stop, or ErrServerStopped
		// when Shutdown stopped it before it started accepting.
		return nil
	}
	s.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownTimeout)
	defer cancel()
	return errors.Join(fmt.Errorf("kit: serve: %w", err), s.Shutdown(ctx))
}

// notServing records that Serve ended before serving, so Shutdown has
// nothing to drain.
func (s *Server) notServing() {
	s.mu.Lock()
	s.serving = false
	s.mu.Unlock()
}

// unknownMethod answers a call to a method no service has, as grpc-go does
// (UNIMPLEMENTED, with grpc-go's message), but through the server's stream
// chain, so that the call is counted in the RPC metrics (under one
// rpc.method, "_OTHER": the name is the caller's) and logged like any
// other.
func (s *Server) unknownMethod(ss grpc.ServerStream) error {
	// "/service/method": grpc-go refuses a name without two slashes itself.
	full, _ := grpc.MethodFromServerStream(ss)
	service, method, _ := cutLast(strings.TrimPrefix(full, "/"), "/")
	s.servicesOnce.Do(func() {
		s.services = make(map[string]bool)
		for name := range s.grpc.GetServiceInfo() { // complete: services are registered before Serve
			s.services[name] = true
		}
	})
	if !s.services[service] {
		return middleware.UnknownMethod(status.Errorf(codes.Unimplemented, "unknown service %v", service))
	}
	return middleware.UnknownMethod(status.Errorf(codes.Unimplemented, "unknown method %v for service %v", method, service))
}

// cutLast slices s around the last sep, as grpc-go splits a method name.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// streamWorkers keeps a pool of goroutines serving incoming streams. grpc-go
// otherwise starts a goroutine per call, whose stack, deeper with kit's
// chains, grows (a copy) on every call; a pooled worker keeps its grown
// stack. When every worker is busy grpc-go falls back to a new goroutine, so
// the pool size bounds nothing: 16 workers per core, at least 64
// (with 16 workers, 64 calls in flight cost 3% more CPU per call than with
// 32 or 64: `make bench`'s cost table, measured while choosing).
func streamWorkers() grpc.ServerOption {
	return grpc.NumStreamWorkers(uint32(max(64, 16*runtime.GOMAXPROCS(0))))
}

// register registers the instance for addr; it is interrupted by Shutdown.
func (s *Server) register(addr net.Addr) error {
	inst, err := s.instance(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.stopping, s.opts.registerTimeout)
	defer cancel()
	err = s.opts.registrar.Register(ctx, inst)
	s.mu.Lock()
	late := s.stopping.Err() != nil // Shutdown started and found nothing to deregister.
	if err == nil && !late {
		s.registered = &inst
	}
	s.mu.Unlock()
	if late {
		// The registration may have reached the registry before Shutdown
		// cancelled it: withdraw it, best effort.
		dctx, cancel := context.WithTimeout(context.Background(), s.opts.registerTimeout)
		defer cancel()
		return errors.Join(err, s.deregister(dctx, inst))
	}
	if err != nil {
		return fmt.Errorf("kit: register %s at %s: %w", inst.Name, inst.HostPort(), err)
	}
	return nil
}

func (s *Server) deregister(ctx context.Context, inst registry.Instance) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.registerTimeout)
	defer cancel()
	if err := s.opts.registrar.Deregister(ctx, inst); err != nil {
		return fmt.Errorf("kit: deregister %s: %w", inst.ID, err)
	}
	return nil
}

// instance completes the configured instance with the listener's address.
func (s *Server) instance(addr net.Addr) (registry.Instance, error) {
	inst := s.opts.instance
	tcp, ok := addr.(*net.TCPAddr)
	if !ok && (inst.Address == "" || inst.Port == 0) {
		return inst, fmt.Errorf("kit: register: listener address %v is not TCP; set Address and Port in WithRegistrar", addr)
	}
	if inst.Port == 0 {
		inst.Port = tcp.Port
	}
	if inst.Address == "" {
		inst.Address = AdvertiseHost(tcp.IP)
	}
	if inst.ID == "" {
		inst.ID = inst.Name + "-" + inst.Address + "-" + strconv.Itoa(inst.Port)
	}
	// The API for the callers that learn it at run time: the fingerprint
	// of the protos served and the methods callable without a token.
	a, _ := LayerOf[*auth.Authenticator](s, LayerAuth)
	api, err := apiMeta(s.grpc, a)
	if err != nil {
		return inst, err
	}
	inst.Meta = maps.Clone(inst.Meta)
	if inst.Meta == nil {
		inst.Meta = map[string]string{}
	}
	maps.Copy(inst.Meta, api)
	return inst, nil
}

// AdvertiseHost returns the host others reach a listener on ip at, as kit
// registers it: ip itself, or, for a listener on every interface (ip nil or
// unspecified), the first global unicast IPv4 address of an interface that
// is up, else 127.0.0.1. Set the instance's Address (registry.advertise)
// where that guess is wrong, e.g. on hosts with several networks.
func AdvertiseHost(ip net.IP) string {
	if ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return advertiseIP().String()
}

// advertiseIP returns the first global unicast IPv4 address of an interface
// that is up, or 127.0.0.1 when there is none.
func advertiseIP() net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return net.IPv4(127, 0, 0, 1)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP
			}
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

// Run listens on the configured address and serves until ctx is done or the
// process gets SIGINT or SIGTERM, then shuts down within the shutdown timeout.
// It returns nil after a clean shutdown; on an error it has shut the server
// down too (releasing telemetry), so nothing is left to clean up.
func (s *Server) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.opts.address)
	if err != nil {
		return errors.Join(fmt.Errorf("kit: listen on %q: %w", s.opts.address, err), s.shutdownAfterFailure())
	}
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	select {
	case err := <-errc:
		if err != nil {
			return errors.Join(err, s.shutdownAfterFailure())
		}
		return nil
	case <-sigCtx.Done():
	}
	stopSignals() // a second signal kills the process the default way
	s.opts.logger.LogAttrs(ctx, slog.LevelInfo, "shutting down", slog.Any("cause", context.Cause(sigCtx)))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.shutdownTimeout)
	defer cancel()
	return errors.Join(s.Shutdown(shutdownCtx), <-errc)
}

// shutdownAfterFailure releases what a server that failed to start holds.
func (s *Server) shutdownAfterFailure() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown stops the server: deregister, health NOT_SERVING, drain window,
// graceful stop, all bounded by ctx; when ctx ends first, remaining calls are
// cut off and the ctx error is returned. Shutdown may be called more than
// once and before Serve; later calls wait for the first to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	s.shutdownOnce.Do(func() {
		s.shutdownErr = s.shutdown(ctx)
		close(s.shutdownDone)
	})
	select {
	case <-s.shutdownDone:
		return s.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) shutdown(ctx context.Context) error {
	var errs []error
	s.mu.Lock()
	inst, serving := s.registered, s.serving
	s.registered = nil
	s.ready.Store(false)
	s.mu.Unlock()

	log := s.opts.logger
	if inst != nil {
		if err := s.deregister(ctx, *inst); err != nil {
			errs = append(errs, err)
		}
	}
	s.health.Shutdown() // every service NOT_SERVING

	if serving && s.opts.drain > 0 {
		log.LogAttrs(ctx, slog.LevelInfo, "draining", slog.Duration("window", s.opts.drain))
		t := time.NewTimer(s.opts.drain)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}

	for _, hook := range s.opts.beforeStop {
		if err := hook(ctx); err != nil {
			errs = append(errs, fmt.Errorf("kit: before stop: %w", err))
		}
	}

	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
		errs = append(errs, fmt.Errorf("kit: shutdown deadline reached, remaining calls cut off: %w", ctx.Err()))
	}
	s.closeAdmin()
	if s.unsubscribe != nil {
		s.unsubscribe()
	}
	if s.balancerMetrics != nil {
		s.balancerMetrics.Unregister()
	}
	if s.owned != nil { // last: the spans and metrics of the final calls
		if err := s.owned.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("kit: flush telemetry: %w", err))
		}
	}
	log.LogAttrs(ctx, slog.LevelInfo, "stopped")
	return errors.Join(errs...)
}
