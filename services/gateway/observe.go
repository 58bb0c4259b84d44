package gateway

import (
	"context"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

// scope is the instrumentation scope of the gateway's spans and metrics.
const scope = "github.com/grpckit/grpckit/services/gateway"

// observer makes the span and metrics of each request.
type observer struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	requests   metric.Int64Counter
	duration   metric.Float64Histogram
	limited    metric.Int64Counter
}

// newObserver returns an observer on t's providers, or one that records
// nothing when t is nil.
func newObserver(t *telemetry.Telemetry) (*observer, error) {
	var (
		tp   trace.TracerProvider          = tracenoop.NewTracerProvider()
		mp   metric.MeterProvider          = metricnoop.NewMeterProvider()
		prop propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator()
	)
	if t != nil {
		tp, mp, prop = t.TracerProvider(), t.MeterProvider(), t.Propagator()
	}
	o := &observer{tracer: tp.Tracer(scope), propagator: prop}
	m := mp.Meter(scope)
	var err error
	if o.requests, err = m.Int64Counter("grpckit.gateway.requests",
		metric.WithDescription("HTTP requests served by the gateway, by method, route and status."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if o.duration, err = m.Float64Histogram("grpckit.gateway.request.duration",
		metric.WithDescription("Time to serve an HTTP request, by method, route and status."),
		metric.WithUnit("s")); err != nil {
		return nil, err
	}
	if o.limited, err = m.Int64Counter("grpckit.gateway.rate_limited",
		metric.WithDescription("HTTP requests refused by an edge rate limit, by scope (client or global)."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	return o, nil
}

// start starts the server span of r and returns r with the span's context
// and the function that ends the span once the route and status are known.
func (o *observer) start(r *http.Request) (*http.Request, func(route string, status int)) {
	ctx := o.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	method := knownMethod(r.Method)
	ctx, span := o.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.path", r.URL.Path)))
	return r.WithContext(ctx), func(route string, status int) {
		span.SetName(method + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(otelcodes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// record counts a served request.
func (o *observer) record(ctx context.Context, method, route string, status int, limited string, d time.Duration) {
	set := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("http.request.method", knownMethod(method)),
		attribute.String("http.route", route),
		attribute.Int("http.response.status_code", status)))
	o.requests.Add(ctx, 1, set)
	o.duration.Record(ctx, d.Seconds(), set)
	if limited != "" {
		o.limited.Add(ctx, 1, metric.WithAttributes(attribute.String("scope", limited)))
	}
}

// knownMethod returns method when it is a standard HTTP method and "_OTHER"
// otherwise, so that clients cannot grow the metrics' label sets.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "_OTHER"
}

// routeOf returns the path template of a ServeMux pattern
// ("GET /v1/users/{id}" -> "/v1/users/{id}"), or "unmatched" for requests
// that matched no route.
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}
