package telemetry

import (
	"cmp"
	"regexp"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/grpckit/grpckit/kit/internal/kittest"
)

// spanShape is a span reduced to what must match otelgrpc's: everything but
// ids, times and the instrumentation scope.
type spanShape struct {
	Name          string
	Kind          string
	Attributes    string
	Status        string
	StatusMessage string
	Parent        string // "none", "local" or "remote"
	Events        int
	Links         int
}

// serverPort matches the port in encoded attributes: each setup listens on
// a port of its own.
var serverPort = regexp.MustCompile(`server\.port=[0-9]+`)

func shapes(spans tracetest.SpanStubs) []spanShape {
	out := make([]spanShape, 0, len(spans))
	for _, s := range spans {
		parent := "none"
		switch {
		case s.Parent.IsRemote():
			parent = "remote"
		case s.Parent.IsValid():
			parent = "local"
		}
		attrs := attribute.NewSet(s.Attributes...)
		out = append(out, spanShape{
			Name: s.Name, Kind: s.SpanKind.String(),
			Attributes: serverPort.ReplaceAllString(attrs.Encoded(attribute.DefaultEncoder()), "server.port=PORT"),
			Status:     s.Status.Code.String(), StatusMessage: s.Status.Description,
			Parent: parent, Events: len(s.Events), Links: len(s.Links),
		})
	}
	slices.SortFunc(out, func(a, b spanShape) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Attributes, b.Attributes),
			cmp.Compare(a.StatusMessage, b.StatusMessage))
	})
	return out
}

// TestSpansMatchOtelgrpc makes the calls of TestMetricsMatchOtelgrpc once
// through a server and client with kit's interceptors (spans recorded), once
// through a server and client with otelgrpc's stats handlers, and expects
// the same spans from both: names, kinds, attributes (server address and
// port included), status codes and messages, parents (none for the
// client's, remote for the server's), events and links. (The two cannot
// share a client: each would parent the other's spans. That the parents
// are the right spans is TestTwoHopTrace's.)
func TestSpansMatchOtelgrpc(t *testing.T) {
	kitExp, refExp := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	tel := newTelemetry(t, testConfig("svc"), fakeEnv(nil), WithSyncSpanExporter(kitExp))
	refTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(refExp))
	t.Cleanup(func() { _ = refTP.Shutdown(t.Context()) })
	refOpts := []otelgrpc.Option{otelgrpc.WithTracerProvider(refTP), otelgrpc.WithPropagators(tel.Propagator())}

	calls := makeCalls(t, testgrpc.NewTestServiceClient(servePair(t, tel.ServerOptions(), tel.DialOptions())))
	makeCalls(t, testgrpc.NewTestServiceClient(servePair(t,
		[]grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(refOpts...))},
		[]grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(refOpts...))})))

	var got, want tracetest.SpanStubs
	kittest.WaitFor(t, "every span ended on both", func() bool {
		got, want = kitExp.GetSpans(), refExp.GetSpans()
		return len(got) == 2*calls && len(want) == 2*calls
	})
	if diff := gocmp.Diff(shapes(want), shapes(got)); diff != "" {
		t.Errorf("spans (-otelgrpc +kit):\n%s", diff)
	}
}
