package recovery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "secret detail of the panic"

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

// serve starts svc behind r's interceptors and returns a client.
func serve(t *testing.T, r *Recoverer, svc *kittest.Service) testpbv1.TestServiceClient {
	t.Helper()
	return testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(r.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(r.StreamServerInterceptor()),
	}))
}

// recvAll reads a stream that meets the server's faults after its first
// message to its end, and returns its final error (nil: OK).
func recvAll(ctx context.Context, c testpbv1.TestServiceClient) error {
	s, err := c.EchoStream(ctx, &testpbv1.EchoStreamRequest{Message: "m", FaultAfter: 1})
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
	mp, reader := kittest.NewMeterProvider(t)
	r, err := New(DefaultConfig(), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	svc := &kittest.Service{}
	c := serve(t, r, svc)
	ctx := t.Context()

	// Each call panics with v, when not nil: a unary call with a string,
	// a stream after its first message with an error.
	unary := func(v any) result {
		if v != nil {
			svc.PanicNext(v)
		}
		_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "m"})
		return resultOf(err)
	}
	stream := func(v any) result {
		if v != nil {
			svc.PanicNext(v)
		}
		return resultOf(recvAll(ctx, c))
	}
	got := []result{
		unary(secret),
		unary(nil),
		stream(errors.New(secret)),
		stream(nil),
	}
	internal := result{codes.Internal, "internal error"}
	want := []result{internal, {Code: codes.OK}, internal, {Code: codes.OK}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	out := logs.String()
	for _, want := range []string{
		`"level":"ERROR"`,
		`"method":"/testpb.v1.TestService/Echo"`,
		`"method":"/testpb.v1.TestService/EchoStream"`,
		`"panic":"` + secret + `"`,
		`"stack":"goroutine `,
		"kittest.(*Service).Echo(", // the frames of the panic
		"kittest.(*Service).EchoStream(",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("%d log lines, want 2", n)
	}

	counts := kittest.MetricSumsBy(t, reader, "grpckit.recovery.panics", "method")
	wantCounts := map[string]int64{"/testpb.v1.TestService/Echo": 1, "/testpb.v1.TestService/EchoStream": 1}
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
	svc := &kittest.Service{}
	c := serve(t, r, svc)
	svc.PanicNext(secret)
	if _, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"}); status.Code(err) != codes.Internal {
		t.Errorf("got %v, want Internal", err)
	}
}

func TestNoAllocationWithoutPanic(t *testing.T) {
	r, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	interceptor := r.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/testpb.v1.TestService/Echo"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { interceptor(ctx, nil, info, handler) }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
