package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// Telemetry owns a service's tracer and meter providers, its propagator, its
// Prometheus registry, and the interceptors built over them. Its methods
// are safe for concurrent use.
type Telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	tracing        *tracing    // nil when no span is recorded
	serverMetrics  *rpcMetrics // nil when metrics are off
	clientMetrics  *rpcMetrics // nil when metrics are off
	metricsHandler http.Handler
	exporter       string

	shutdownOnce sync.Once
	shutdownErr  error
	shutdowns    []func(context.Context) error // SDK providers to flush, in order
	abort        chan struct{}                 // closed when Shutdown's ctx ends: abandon exports
}

// New validates cfg and builds the providers; see the package documentation
// for what the environment changes. ctx bounds the creation of the span
// exporter only. Call [Telemetry.Shutdown] when done.
func New(ctx context.Context, cfg Config, opts ...Option) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions
	for _, opt := range opts {
		opt.apply(&o)
	}

	t := &Telemetry{
		abort:      make(chan struct{}),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	res, err := newResource(ctx, cfg.ServiceName, o.env)
	if err != nil {
		return nil, err
	}
	if err := t.initTraces(ctx, cfg, o, res); err != nil {
		return nil, err
	}
	if err := t.initMetrics(cfg, res); err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	o.logger.LogAttrs(ctx, slog.LevelInfo, "telemetry ready",
		slog.String("service", cfg.ServiceName),
		slog.String("traces_exporter", t.exporter),
		slog.Bool("metrics", cfg.Metrics))
	return t, nil
}

// initTraces sets up the tracer provider, and the span maker when it
// records.
func (t *Telemetry) initTraces(ctx context.Context, cfg Config, o options, res *resource.Resource) error {
	exp := o.exporter
	t.exporter = ExporterCustom
	if exp == nil {
		t.exporter = tracesExporterName(o.env)
		if t.exporter != ExporterNone {
			var err error
			if exp, err = newSpanExporter(ctx, t.exporter, o.env); err != nil {
				return err
			}
		}
	}
	if exp == nil {
		t.tracerProvider = tracenoop.NewTracerProvider()
		return nil
	}

	samplerName, samplerArg := cfg.TracesSampler, ""
	if samplerName == "" {
		samplerName, samplerArg = o.env("OTEL_TRACES_SAMPLER"), o.env("OTEL_TRACES_SAMPLER_ARG")
		if samplerName == "" {
			samplerName = "parentbased_always_on"
		}
	}
	sampler, err := parseSampler(samplerName, samplerArg)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER: %w", err)
	}
	exp = abortableExporter{SpanExporter: exp, done: t.abort}
	var process sdktrace.TracerProviderOption // WithBatcher starts a goroutine: build only one
	if o.sync {
		process = sdktrace.WithSyncer(exp)
	} else {
		process = sdktrace.WithBatcher(exp)
	}
	tp := sdktrace.NewTracerProvider(process, sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	t.tracerProvider = tp
	t.shutdowns = append(t.shutdowns, tp.Shutdown)
	t.tracing = newTracing(tp)
	return nil
}

func (t *Telemetry) initMetrics(cfg Config, res *resource.Resource) error {
	reg := prometheus.NewRegistry()
	t.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if !cfg.Metrics {
		t.meterProvider = metricnoop.NewMeterProvider()
		return nil
	}
	t.serverMetrics, t.clientMetrics = newRPCMetrics(false), newRPCMetrics(true)
	reader, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithProducer(&rpcProducer{metrics: []*rpcMetrics{t.serverMetrics, t.clientMetrics}}))
	if err != nil {
		return fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return fmt.Errorf("telemetry: go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return fmt.Errorf("telemetry: process collector: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	t.meterProvider = mp
	t.shutdowns = append(t.shutdowns, mp.Shutdown)
	return nil
}

// newResource describes the service: service.name, the OTel SDK, and
// OTEL_RESOURCE_ATTRIBUTES read through env (service.name from cfg wins).
func newResource(ctx context.Context, service string, env func(string) string) (*resource.Resource, error) {
	var attrs []attribute.KeyValue
	for pair := range strings.SplitSeq(env("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if u, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = u
		}
		attrs = append(attrs, attribute.String(k, v))
	}
	attrs = append(attrs, attribute.String("service.name", service))
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// ServerOptions returns the interceptors a bare grpc-go server needs for
// this Telemetry; pass them before any other interceptor, so that they come
// first. kit's servers put them first in their own chain instead, and
// answer calls to unknown methods through it, which a bare grpc-go server
// answers before any interceptor (such calls are then not counted).
func (t *Telemetry) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(t.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(t.StreamServerInterceptor()),
	}
}

// DialOptions returns the interceptors a bare grpc-go client needs for this
// Telemetry: metrics per call, then spans and propagation per attempt. A
// client with a retrying interceptor of its own should rather chain
// [Telemetry.UnaryClientInterceptor] before it and
// [Telemetry.UnaryAttemptInterceptor] after it, as kit's clients do.
func (t *Telemetry) DialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if i := t.UnaryClientInterceptor(); i != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(i))
	}
	if i := t.StreamClientInterceptor(); i != nil {
		opts = append(opts, grpc.WithChainStreamInterceptor(i))
	}
	return append(opts,
		grpc.WithChainUnaryInterceptor(t.UnaryAttemptInterceptor()),
		grpc.WithChainStreamInterceptor(t.StreamAttemptInterceptor()))
}

// TracerProvider returns the tracer provider: a no-op provider when no span
// exporter runs, else an SDK provider.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// MeterProvider returns the meter provider whose instruments appear on
// [Telemetry.MetricsHandler]; a no-op provider when [Config.Metrics] is off.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// Propagator returns the W3C trace context and baggage propagator the
// interceptors use, for carrying traces over other transports (HTTP).
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// MetricsHandler returns an http.Handler serving this Telemetry's Prometheus
// registry in the text exposition format, for the admin /metrics.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metricsHandler }

// ServerCalls returns the number of calls the server interceptors have
// recorded as ended since the Telemetry was made, every method and status
// code together, and false when metrics are off. It reads the counts the
// interceptors keep anyway (rpc.server.call.duration), so calling it costs
// the calls nothing; it walks every histogram, so read it at most about
// once a second, not per call.
func (t *Telemetry) ServerCalls() (uint64, bool) {
	if t.serverMetrics == nil {
		return 0, false
	}
	return t.serverMetrics.calls(), true
}

// TracesExporter names the span exporter that runs: [ExporterNone],
// [ExporterOTLP], [ExporterConsole] or [ExporterCustom].
func (t *Telemetry) TracesExporter() string { return t.exporter }

// Shutdown flushes pending spans and metrics and stops the exporters, bounded
// by ctx: when ctx ends first, exports still in flight are abandoned and
// Shutdown returns ctx's error. Later calls return the first call's result.
// The interceptors and handlers keep working after Shutdown but export
// nothing.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		stop := context.AfterFunc(ctx, func() { close(t.abort) })
		defer func() {
			if !stop() {
				return // ctx ended: abort already closed (or closing)
			}
			close(t.abort)
		}()
		var errs []error
		for _, f := range t.shutdowns {
			if err := f(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			t.shutdownErr = fmt.Errorf("telemetry: shutdown: %w", err)
		}
	})
	return t.shutdownErr
}
