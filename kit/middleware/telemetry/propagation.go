package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// inject writes ctx's trace context and baggage into the outgoing metadata,
// when there is any.
func (t *Telemetry) inject(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return ctx
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		md = metadata.MD{}
	}
	t.propagator.Inject(ctx, metadataCarrier(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// extract reads the caller's trace context and baggage from the incoming
// metadata, when there is any, without copying the metadata.
func (t *Telemetry) extract(ctx context.Context) context.Context {
	if len(metadata.ValueFromIncomingContext(ctx, "traceparent")) == 0 &&
		len(metadata.ValueFromIncomingContext(ctx, "baggage")) == 0 {
		return ctx
	}
	return t.propagator.Extract(ctx, incomingCarrier{ctx})
}

// incomingCarrier reads a context's incoming metadata for Extract.
type incomingCarrier struct{ ctx context.Context }

var _ propagation.TextMapCarrier = incomingCarrier{}

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c incomingCarrier) Set(string, string) {} // read only

func (c incomingCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	return metadataCarrier(md).Keys()
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
