package kittest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func echo(t *testing.T, c testpbv1.TestServiceClient, msg string) (string, codes.Code) {
	t.Helper()
	resp, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: msg})
	return resp.GetMessage() + "@" + resp.GetServer(), status.Code(err)
}

// stream returns the sequences an EchoStream received and the code it
// ended with.
func stream(t *testing.T, ctx context.Context, c testpbv1.TestServiceClient, req *testpbv1.EchoStreamRequest) ([]int32, codes.Code) {
	t.Helper()
	s, err := c.EchoStream(ctx, req)
	var got []int32
	for err == nil {
		var m *testpbv1.EchoStreamResponse
		if m, err = s.Recv(); err == nil {
			got = append(got, m.GetSequence())
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return got, status.Code(err)
}

func TestServiceAnswers(t *testing.T) {
	svc := &kittest.Service{Name: "s1"}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil))
	if got, code := echo(t, c, "hi"); got != "hi@s1" || code != codes.OK {
		t.Errorf("Echo = %q, %v; want hi@s1, OK", got, code)
	}
	if _, code := echo(t, c, ""); code != codes.InvalidArgument {
		t.Errorf("Echo with no message: %v, want InvalidArgument", code)
	}
	for _, tc := range []struct {
		count, after int32
		want         []int32
		wantCode     codes.Code
	}{
		{0, 0, []int32{1}, codes.OK},
		{3, 0, []int32{1, 2, 3}, codes.OK},
		{3, 3, []int32{1, 2, 3}, codes.OK},
		{101, 0, nil, codes.InvalidArgument},
		{-1, 0, nil, codes.InvalidArgument},
		{2, 3, nil, codes.InvalidArgument},
		{2, -1, nil, codes.InvalidArgument},
	} {
		got, code := stream(t, t.Context(), c, &testpbv1.EchoStreamRequest{Message: "m", Count: tc.count, FaultAfter: tc.after})
		if diff := cmp.Diff(tc.want, got); diff != "" || code != tc.wantCode {
			t.Errorf("EchoStream(count %d, fault_after %d) ended with %v, want %v; sequences (-want +got):\n%s", tc.count, tc.after, code, tc.wantCode, diff)
		}
	}
	if _, err := c.Put(t.Context(), &testpbv1.PutRequest{Key: "k"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Put without a Store: %v, want FailedPrecondition", err)
	}
	if got := svc.Calls(); got != 10 {
		t.Errorf("Calls = %d, want 10", got)
	}
}

func TestServiceFaults(t *testing.T) {
	svc := &kittest.Service{}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil))
	unavailable := status.Error(codes.Unavailable, "test: down")

	svc.FailNext(2, unavailable)
	var got []codes.Code
	for range 3 {
		_, code := echo(t, c, "m")
		got = append(got, code)
	}
	svc.Fail(status.Error(codes.NotFound, "test: gone"))
	for range 2 {
		_, code := echo(t, c, "m")
		got = append(got, code)
	}
	svc.Fail(nil)
	_, code := echo(t, c, "m")
	got = append(got, code)
	want := []codes.Code{codes.Unavailable, codes.Unavailable, codes.OK, codes.NotFound, codes.NotFound, codes.OK}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}

	// A stream meets the faults after fault_after messages.
	for after := range int32(4) {
		svc.FailNext(1, unavailable)
		seqs, code := stream(t, t.Context(), c, &testpbv1.EchoStreamRequest{Message: "m", Count: 3, FaultAfter: after})
		if want := []int32{1, 2, 3}[:after]; code != codes.Unavailable || !cmp.Equal(seqs, want, cmpopts.EquateEmpty()) {
			t.Errorf("stream failing after %d messages: %v after %v, want Unavailable after %v", after, code, seqs, want)
		}
	}

	// A panic reaches the server's goroutine; without a recovery layer the
	// test binary would die, so check it with a recovering interceptor.
	recovered := make(chan any, 1)
	recoverer := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				recovered <- v
				err = status.Error(codes.Internal, "panic")
			}
		}()
		return h(ctx, req)
	}
	psvc := &kittest.Service{}
	pc := testpbv1.NewTestServiceClient(kittest.Serve(t, psvc.Register, []grpc.ServerOption{grpc.UnaryInterceptor(recoverer)}))
	psvc.PanicNext("boom")
	if _, code := echo(t, pc, "m"); code != codes.Internal || <-recovered != "boom" {
		t.Errorf("PanicNext: %v, want the handler to panic with boom", code)
	}
	if _, code := echo(t, pc, "m"); code != codes.OK {
		t.Errorf("the call after the panic: %v, want OK", code)
	}
}

func TestServiceBlocks(t *testing.T) {
	svc := &kittest.Service{}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil))
	svc.Block(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan codes.Code, 1)
	go func() {
		_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "m"})
		done <- status.Code(err)
	}()
	if got := <-svc.Blocked(); got != testpbv1.TestService_Echo_FullMethodName {
		t.Errorf("Blocked sent %q, want the Echo method", got)
	}
	cancel()
	if got := <-done; got != codes.Canceled {
		t.Errorf("blocked call ended with %v, want Canceled", got)
	}
	svc.Block(false)
	if _, code := echo(t, c, "m"); code != codes.OK {
		t.Errorf("after Block(false): %v", code)
	}
}

func TestServiceRecordsMetadataAndRelays(t *testing.T) {
	back := &kittest.Service{Name: "back"}
	front := &kittest.Service{Name: "front", Next: testpbv1.NewTestServiceClient(kittest.Serve(t, back.Register, nil))}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, front.Register, nil))
	ctx := metadata.AppendToOutgoingContext(t.Context(), "test-key", "v1")
	resp, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "m"})
	if err != nil || resp.GetServer() != "back" {
		t.Fatalf("Echo through front = %v, %v; want back's answer", resp, err)
	}
	if got := front.Metadata(); len(got) != 1 || !cmp.Equal(got[0].Get("test-key"), []string{"v1"}) {
		t.Errorf("front's metadata = %v, want test-key v1", got)
	}
	// Incoming metadata is not passed on by itself.
	if got := back.Metadata(); len(got) != 1 || len(got[0].Get("test-key")) != 0 {
		t.Errorf("back's metadata = %v, want one call without test-key", got)
	}
	if front.Calls() != 1 || back.Calls() != 1 {
		t.Errorf("calls: front %d, back %d; want 1 each", front.Calls(), back.Calls())
	}
}

func TestStore(t *testing.T) {
	store := &kittest.Store{}
	svc := &kittest.Service{Store: store}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil))
	created, err := c.Create(t.Context(), &testpbv1.CreateRequest{Key: "a", Value: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(t.Context(), &testpbv1.CreateRequest{Key: "a", Value: "2"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second Create: %v, want AlreadyExists", err)
	}
	if _, err := c.Put(t.Context(), &testpbv1.PutRequest{Key: "a", Value: "3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), &testpbv1.PutRequest{Key: "b", Value: "4"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(t.Context(), &testpbv1.CreateRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Create without a key: %v, want InvalidArgument", err)
	}
	want := []*testpbv1.Item{
		{Key: "a", Value: "3", Id: "item-1", Version: 2},
		{Key: "b", Value: "4", Id: "item-2", Version: 1},
	}
	if diff := cmp.Diff(want, store.Items(), protocmp.Transform()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&testpbv1.Item{Key: "a", Value: "1", Id: "item-1", Version: 1}, created.GetItem(), protocmp.Transform()); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if got := store.Writes(); got != 3 {
		t.Errorf("Writes = %d, want 3", got)
	}
}

func TestMetricSums(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)
	meter := mp.Meter("test")
	calls, _ := meter.Int64Counter("calls")
	inflight, _ := meter.Int64UpDownCounter("inflight")
	latency, _ := meter.Float64Histogram("latency")
	ctx := t.Context()
	calls.Add(ctx, 2, metric.WithAttributes(attribute.String("method", "a"), attribute.String("code", "OK")))
	calls.Add(ctx, 3, metric.WithAttributes(attribute.String("method", "b"), attribute.String("code", "OK")))
	calls.Add(ctx, 4, metric.WithAttributes(attribute.String("method", "a")))
	inflight.Add(ctx, -1)
	latency.Record(ctx, 1)

	if diff := cmp.Diff(map[string]int64{"calls": 9, "inflight": -1}, kittest.MetricSums(t, reader)); diff != "" {
		t.Errorf("MetricSums (-want +got):\n%s", diff)
	}
	want := map[string]int64{"a OK": 2, "b OK": 3, "a ": 4}
	if diff := cmp.Diff(want, kittest.MetricSumsBy(t, reader, "calls", "method", "code")); diff != "" {
		t.Errorf("MetricSumsBy (-want +got):\n%s", diff)
	}
	if got := kittest.MetricSumsBy(t, reader, "never recorded"); len(got) != 0 {
		t.Errorf("MetricSumsBy of an unknown metric = %v, want empty", got)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	kittest.WaitFor(t, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond ran %d times, want 3", n)
	}
}

func TestTargetNamesTheConnection(t *testing.T) {
	cc := kittest.Serve(t, nil, nil)
	if cc.Target() != kittest.Target || !strings.HasSuffix(kittest.Target, "bufnet") {
		t.Errorf("target %q, want %q", cc.Target(), kittest.Target)
	}
	named := kittest.StartServer(t, nil).Dial(t, "other")
	if named.Target() != "passthrough:///other" {
		t.Errorf("target %q, want passthrough:///other", named.Target())
	}
}
