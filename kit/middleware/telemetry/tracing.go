package telemetry

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/cowmap"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// tracing makes the spans of calls, in the shape otelgrpc v0.72 gives them
// (see TestSpansMatchOtelgrpc): named "pkg.Service/Method", of kind server
// or client, with rpc.method, rpc.system.name, server.address and
// server.port, and rpc.response.status_code; the status is an error with
// the gRPC message for every failed call on the client, and for the codes
// that are the server's fault on the server. Unlike otelgrpc it needs no
// stats handler (whose events alone cost grpc-go some 33 allocations per
// call), and caches per method and per address what otelgrpc builds on
// every call.
type tracing struct {
	tracer  trace.Tracer
	methods cowmap.Map[*spanMethod] // at most maxMethods

	addrs addrCache[*addrAttrs] // server.address and server.port, with each status code
}

// addrAttrs are the attributes a span ends with for a server address:
// server.address and server.port, then rpc.response.status_code, made once
// per code.
type addrAttrs struct {
	addr   []attribute.KeyValue
	byCode [codes.Unauthenticated + 1]atomic.Pointer[[]attribute.KeyValue]
}

// withCode returns a's attributes and code's status attribute.
func (a *addrAttrs) withCode(code codes.Code) []attribute.KeyValue {
	if int(code) >= len(a.byCode) {
		return append(slices.Clip(a.addr), semconv.RPCResponseStatusCode(statuscode.Name(code)))
	}
	if p := a.byCode[code].Load(); p != nil {
		return *p
	}
	attrs := append(slices.Clip(a.addr), statusAttrs[code]...)
	a.byCode[code].Store(&attrs)
	return attrs
}

// spanMethod is what the spans of one method start with.
type spanMethod struct {
	name   string
	server []trace.SpanStartOption
	client []trace.SpanStartOption
}

// statusAttrs holds rpc.response.status_code for every code.
var statusAttrs = func() (a [codes.Unauthenticated + 1][]attribute.KeyValue) {
	for c := range a {
		a[c] = []attribute.KeyValue{semconv.RPCResponseStatusCode(statuscode.Name(codes.Code(c)))}
	}
	return a
}()

func newTracing(tp trace.TracerProvider) *tracing {
	return &tracing{
		tracer: tp.Tracer(scopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		addrs:  newAddrCache[*addrAttrs](),
	}
}

func (tr *tracing) method(fullMethod string) *spanMethod {
	return tr.methods.LoadOrBuild(fullMethod, maxMethods, func() *spanMethod {
		name, attrs := methodAttributes(fullMethod)
		return &spanMethod{
			name:   name,
			server: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...)},
			client: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)},
		}
	})
}

// start starts the span of a call of fullMethod on the given side; on the
// server ctx carries the caller's span context, extracted, as the parent.
func (tr *tracing) start(ctx context.Context, fullMethod string, client bool) (context.Context, trace.Span) {
	m := tr.method(fullMethod)
	if client {
		return tr.tracer.Start(ctx, m.name, m.client...)
	}
	return tr.tracer.Start(ctx, m.name, m.server...)
}

// end ends span with err's status; addr is the server's address (the
// remote one on the client, the local one on the server), nil when the
// call reached none.
func (tr *tracing) end(span trace.Span, err error, addr net.Addr, client bool) {
	code := codeOf(err)
	switch {
	case addr != nil:
		span.SetAttributes(tr.addrs.get(addr, newAddrAttrs).withCode(code)...)
	case int(code) < len(statusAttrs):
		span.SetAttributes(statusAttrs[code]...)
	default:
		span.SetAttributes(semconv.RPCResponseStatusCode(statuscode.Name(code)))
	}
	if err != nil && (client || isServerError(code)) {
		span.SetStatus(otelcodes.Error, status.Convert(err).Message())
	}
	span.End()
}

func newAddrAttrs(hostport string) *addrAttrs {
	return &addrAttrs{addr: serverAddrAttrs(hostport)}
}

// serverAddrAttrs splits a host:port into server.address and server.port.
func serverAddrAttrs(hostport string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(hostport)}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(host)}
	}
	return []attribute.KeyValue{semconv.ServerAddress(host), semconv.ServerPort(p)}
}
