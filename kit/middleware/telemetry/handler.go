package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

// handler is the stats.Handler of one side of a call. Spans come from the
// otelgrpc handler when a span exporter runs; otherwise nothing is recorded
// and the caller's trace context and baggage are only carried through, from
// incoming metadata into the handler's ctx and from ctx into outgoing
// metadata (what otelgrpc over a no-op tracer provider does, without its
// per-call cost). Metrics come from rpcMetrics.
type handler struct {
	client  bool
	tracing stats.Handler // otelgrpc handler; nil when no span is recorded
	prop    propagation.TextMapPropagator
	metrics *rpcMetrics // nil when metrics are off
}

var _ stats.Handler = (*handler)(nil)

func (h *handler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	switch {
	case h.tracing != nil:
		ctx = h.tracing.TagRPC(ctx, info)
	case h.client:
		ctx = h.inject(ctx)
	default:
		ctx = h.extract(ctx)
	}
	if h.metrics != nil {
		ctx = h.metrics.tagRPC(ctx, info)
	}
	return ctx
}

func (h *handler) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if h.tracing != nil {
		h.tracing.HandleRPC(ctx, rs)
	}
	if h.metrics != nil {
		h.metrics.handleRPC(ctx, rs)
	}
}

func (h *handler) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if h.tracing != nil {
		return h.tracing.TagConn(ctx, info)
	}
	return ctx
}

func (h *handler) HandleConn(ctx context.Context, cs stats.ConnStats) {
	if h.tracing != nil {
		h.tracing.HandleConn(ctx, cs)
	}
}

// inject writes ctx's trace context and baggage into the outgoing metadata,
// when there is any.
func (h *handler) inject(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return ctx
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		md = metadata.MD{}
	}
	h.prop.Inject(ctx, metadataCarrier(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// extract reads the caller's trace context and baggage from the incoming
// metadata, when there is any.
func (h *handler) extract(ctx context.Context) context.Context {
	if len(metadata.ValueFromIncomingContext(ctx, "traceparent")) == 0 &&
		len(metadata.ValueFromIncomingContext(ctx, "baggage")) == 0 {
		return ctx
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return h.prop.Extract(ctx, metadataCarrier(md))
}

// metadataCarrier adapts metadata.MD (lower-case keys) to
// propagation.TextMapCarrier.
type metadataCarrier metadata.MD

var _ propagation.TextMapCarrier = metadataCarrier(nil)

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
