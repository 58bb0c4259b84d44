package telemetry

import (
	"context"
	"strings"

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
	kv := make(pairs, 0, 6) // traceparent, tracestate, baggage
	t.propagator.Inject(ctx, &kv)
	for i := 0; i < len(kv); i += 2 {
		if len(metadata.ValueFromOutgoingContext(ctx, kv[i])) > 0 {
			// The metadata has a value already (a caller's, or a hop's
			// forwarded): replace it rather than send two.
			md, _ := metadata.FromOutgoingContext(ctx)
			for i := 0; i < len(kv); i += 2 {
				md.Set(kv[i], kv[i+1])
			}
			return metadata.NewOutgoingContext(ctx, md)
		}
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// pairs collects what a propagator injects, as key, value, key, value...
type pairs []string

var _ propagation.TextMapCarrier = (*pairs)(nil)

func (p *pairs) Get(key string) string {
	for i := 0; i < len(*p); i += 2 {
		if (*p)[i] == key {
			return (*p)[i+1]
		}
	}
	return ""
}

func (p *pairs) Set(key, value string) {
	key = strings.ToLower(key)
	for i := 0; i < len(*p); i += 2 {
		if (*p)[i] == key {
			(*p)[i+1] = value
			return
		}
	}
	*p = append(*p, key, value)
}

func (p *pairs) Keys() []string {
	keys := make([]string, 0, len(*p)/2)
	for i := 0; i < len(*p); i += 2 {
		keys = append(keys, (*p)[i])
	}
	return keys
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
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}
