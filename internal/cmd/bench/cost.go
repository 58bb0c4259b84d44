package main

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric/noop"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// emptyCall is grpc-go's interop EmptyCall, answered as grpc-go's own
// interop server answers it: the cheapest call there is, where whatever a
// chain adds shows most.
var emptyCall = workload{
	register: func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, emptyServer{}) },
	caller: func(cc grpc.ClientConnInterface) caller {
		client := testgrpc.NewTestServiceClient(cc)
		empty := &testgrpc.Empty{}
		return func(ctx context.Context) error {
			_, err := client.EmptyCall(ctx, empty)
			return err
		}
	},
}

type emptyServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func (emptyServer) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return new(testgrpc.Empty), nil
}

// cost lists the rows of the cost table (DESIGN's cost rule): kit's default
// chains against bare grpc-go whose calls carry the same 5s deadline kit's
// client gives them, on EmptyCall.
func cost() []named {
	bareEmpty := func() (caller, func(), error) { return pairOf(emptyCall, nil, nil) }
	return []named{
		{"bare grpc-go, 5s deadline per call (the base)", withDeadline(bareEmpty)},
		{"bare grpc-go, no deadline (reference)", bareEmpty},
		{"kit default chains (metrics on, no exporter)", kitDefaultOf(emptyCall, nil)},
		{"kit default chains + tracing (AlwaysSample, in-memory exporter)", kitDefaultOf(emptyCall, traced)},
		{"bare grpc-go, 5s deadline + otelgrpc v0.72 stats handlers, tracing as above (reference: what kit installed before)", withDeadline(otelgrpcOnly)},
	}
}

// otelgrpcOnly is bare grpc-go with otelgrpc's stats handlers over the
// tracer provider of the tracing row (its metrics off): the usual way of
// tracing grpc-go, which kit's own spans replace.
func otelgrpcOnly() (caller, func(), error) {
	t, err := traced()
	if err != nil {
		return nil, nil, err
	}
	opts := []otelgrpc.Option{otelgrpc.WithTracerProvider(t.TracerProvider()), otelgrpc.WithPropagators(t.Propagator()),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider())}
	call, cleanup, err := pairOf(emptyCall, []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(opts...))},
		[]grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(opts...))})
	if err != nil {
		t.Shutdown(context.Background())
		return nil, nil, err
	}
	return call, func() { cleanup(); t.Shutdown(context.Background()) }, nil
}
