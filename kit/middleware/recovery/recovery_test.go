package recovery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "secret detail of the panic"

// panicky panics on the name "panic" and answers otherwise.
type panicky struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func (panicky) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	if req.GetName() == "panic" {
		panic(secret)
	}
	return &greeterv1.SayHelloResponse{Message: "hello " + req.GetName()}, nil
}

func (panicky) StreamHellos(req *greeterv1.StreamHellosRequest, stream grpc.ServerStreamingServer[greeterv1.StreamHellosResponse]) error {
	if err := stream.Send(&greeterv1.StreamHellosResponse{Message: "hello", Sequence: 1}); err != nil {
		return err
	}
	if req.GetName() == "panic" {
		panic(errors.New(secret))
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a handler.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func serve(t *testing.T, r *Recoverer) greeterv1.GreeterServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(r.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(r.StreamServerInterceptor()))
	greeterv1.RegisterGreeterServiceServer(gs, panicky{})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return greeterv1.NewGreeterServiceClient(cc)
}

func recvAll(ctx context.Context, c greeterv1.GreeterServiceClient, name string) error {
	s, err := c.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: name})
	for err == nil {
		_, err = s.Recv()
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

type result struct {
	Code    codes.Code
	Message string
}

func resultOf(err error) result {
	st := status.Convert(err)
	return result{st.Code(), st.Message()}
}

func TestPanicBecomesInternal(t *testing.T) {
	var logs syncBuffer
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	r, err := New(DefaultConfig(), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, r)
	ctx := t.Context()

	hello := func(name string) result {
		_, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: name})
		return resultOf(err)
	}
	got := []result{
		hello("panic"),
		hello("ada"),
		resultOf(recvAll(ctx, c, "panic")),
		resultOf(recvAll(ctx, c, "ada")),
	}
	internal := result{codes.Internal, "internal error"}
	want := []result{internal, {Code: codes.OK}, internal, {Code: codes.OK}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	out := logs.String()
	for _, want := range []string{
		`"level":"ERROR"`,
		`"method":"/greeter.v1.GreeterService/SayHello"`,
		`"method":"/greeter.v1.GreeterService/StreamHellos"`,
		`"panic":"` + secret + `"`,
		`"stack":"goroutine `,
		"recovery_test.go",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("%d log lines, want 2", n)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "grpckit.recovery.panics" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					method, _ := dp.Attributes.Value("method")
					counts[method.AsString()] += dp.Value
				}
			}
		}
	}
	wantCounts := map[string]int64{"/greeter.v1.GreeterService/SayHello": 1, "/greeter.v1.GreeterService/StreamHellos": 1}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("grpckit.recovery.panics (-want +got):\n%s", diff)
	}
}

func TestDefaultsDiscardLogs(t *testing.T) {
	r, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfig(Config{}); err != nil {
		t.Fatal(err)
	}
	c := serve(t, r)
	if _, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "panic"}); status.Code(err) != codes.Internal {
		t.Errorf("got %v, want Internal", err)
	}
}

func TestNoAllocationWithoutPanic(t *testing.T) {
	r, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	interceptor := r.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/greeter.v1.GreeterService/SayHello"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { interceptor(ctx, nil, info, handler) }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
