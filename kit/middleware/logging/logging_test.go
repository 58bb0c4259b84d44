package logging

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	echo       = testpbv1.TestService_Echo_FullMethodName
	echoStream = testpbv1.TestService_EchoStream_FullMethodName
	target     = kittest.Target
)

var (
	traceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanCtx = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    traceID,
		SpanID:     trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
)

// record is what a test sees of a log record. Duration is "positive" when
// the duration attribute is above zero.
type record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// recordHandler sends every record it handles at or above level to records.
type recordHandler struct {
	level   slog.Level
	records chan record
}

func newRecordHandler(level slog.Level) *recordHandler {
	return &recordHandler{level: level, records: make(chan record, 100)}
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordHandler) WithGroup(string) slog.Handler                { return h }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "duration" && a.Value.Kind() == slog.KindDuration && a.Value.Duration() > 0 {
			rec.Attrs[a.Key] = "positive"
		} else {
			rec.Attrs[a.Key] = a.Value.String()
		}
		return true
	})
	h.records <- rec
	return nil
}

// next returns the next record; records are written before the call's end
// reaches the client, so one is there when the call returned.
func (h *recordHandler) next(t *testing.T) record {
	t.Helper()
	select {
	case r := <-h.records:
		return r
	default:
		t.Fatal("no log record")
		return record{}
	}
}

func (h *recordHandler) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-h.records:
		t.Fatalf("unexpected log record %+v", r)
	default:
	}
}

type tracedStream struct{ grpc.ServerStream }

func (s tracedStream) Context() context.Context {
	return trace.ContextWithSpanContext(s.ServerStream.Context(), spanCtx)
}

// serve starts the test service with the server interceptors of srv (when
// not nil) behind one that puts spanCtx in the context of calls, and
// returns a client with the client interceptors of cl (when not nil).
func serve(t *testing.T, srv, cl *Logger) testpbv1.TestServiceClient {
	t.Helper()
	var sopts []grpc.ServerOption
	if srv != nil {
		sopts = append(sopts,
			grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				return h(trace.ContextWithSpanContext(ctx, spanCtx), req)
			}, srv.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(func(s any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				return h(s, tracedStream{ss})
			}, srv.StreamServerInterceptor()))
	}
	var dopts []grpc.DialOption
	if cl != nil {
		dopts = append(dopts, grpc.WithUnaryInterceptor(cl.UnaryClientInterceptor()), grpc.WithStreamInterceptor(cl.StreamClientInterceptor()))
	}
	return testpbv1.NewTestServiceClient(kittest.Serve(t, (&kittest.Service{}).Register, sopts, dopts...))
}

func newLogger(t *testing.T, cfg Config, h slog.Handler) *Logger {
	t.Helper()
	l, err := New(cfg, WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hello(ctx context.Context, c testpbv1.TestServiceClient, msg string) {
	c.Echo(ctx, &testpbv1.EchoRequest{Message: msg})
}

func stream(ctx context.Context, c testpbv1.TestServiceClient, msg string) {
	s, err := c.EchoStream(ctx, &testpbv1.EchoStreamRequest{Message: msg})
	for err == nil {
		_, err = s.Recv()
	}
}

func TestServerRecords(t *testing.T) {
	h := newRecordHandler(slog.LevelInfo)
	c := serve(t, newLogger(t, Config{Level: "info"}, h), nil)
	ctx := t.Context()

	hello(ctx, c, "ada")
	hello(ctx, c, "")
	stream(ctx, c, "ada")
	stream(ctx, c, "")
	got := []record{h.next(t), h.next(t), h.next(t), h.next(t)}
	h.none(t)

	base := func(method, code string) map[string]string {
		return map[string]string{"method": method, "code": code, "duration": "positive", "peer": "bufconn", "trace_id": traceID.String()}
	}
	withError := func(m map[string]string) map[string]string { m["error"] = "message is required"; return m }
	want := []record{
		{slog.LevelInfo, serverMessage, base(echo, "OK")},
		{slog.LevelInfo, serverMessage, withError(base(echo, "INVALID_ARGUMENT"))},
		{slog.LevelInfo, serverMessage, base(echoStream, "OK")},
		{slog.LevelInfo, serverMessage, withError(base(echoStream, "INVALID_ARGUMENT"))},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestClientRecords(t *testing.T) {
	h := newRecordHandler(slog.LevelInfo)
	c := serve(t, nil, newLogger(t, Config{Level: "info"}, h))

	hello(t.Context(), c, "ada")
	stream(trace.ContextWithSpanContext(t.Context(), spanCtx), c, "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	hello(ctx, c, "ada")
	got := []record{h.next(t), h.next(t), h.next(t)}
	h.none(t)

	want := []record{
		{slog.LevelInfo, clientMessage, map[string]string{
			"method": echo, "code": "OK", "duration": "positive", "peer": "bufconn", "target": target,
		}},
		{slog.LevelInfo, clientMessage, map[string]string{
			"method": echoStream, "code": "INVALID_ARGUMENT", "duration": "positive", "peer": "bufconn", "target": target,
			"trace_id": traceID.String(), "error": "message is required",
		}},
		{slog.LevelInfo, clientMessage, map[string]string{
			"method": echo, "code": "CANCELLED", "duration": "positive", "target": target, "error": "context canceled",
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestLevels calls the interceptor directly: whether a record is written is
// known when it returns.
func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		handler   slog.Level
		wantLevel slog.Level
		wantNone  bool
	}{
		{"info", Config{Level: "info"}, slog.LevelInfo, slog.LevelInfo, false},
		{"debug below the handler", Config{Level: "debug"}, slog.LevelInfo, 0, true},
		{"debug", Config{Level: "DEBUG"}, slog.LevelDebug, slog.LevelDebug, false},
		{"slow", Config{Level: "info", SlowThreshold: duration.Duration(time.Nanosecond)}, slog.LevelInfo, slog.LevelWarn, false},
		{"not slow", Config{Level: "info", SlowThreshold: duration.Duration(time.Hour)}, slog.LevelInfo, slog.LevelInfo, false},
		{"slow while debug is off", Config{Level: "debug", SlowThreshold: duration.Duration(time.Nanosecond)}, slog.LevelInfo, slog.LevelWarn, false},
		{"slow below error", Config{Level: "error", SlowThreshold: duration.Duration(time.Nanosecond)}, slog.LevelInfo, slog.LevelError, false},
		{"warn handler", Config{Level: "info"}, slog.LevelWarn, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRecordHandler(tc.handler)
			l := newLogger(t, tc.cfg, h)
			_, err := l.UnaryServerInterceptor()(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: echo},
				func(context.Context, any) (any, error) { return nil, nil })
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNone {
				h.none(t)
				return
			}
			if got := h.next(t).Level; got != tc.wantLevel {
				t.Errorf("level %v, want %v", got, tc.wantLevel)
			}
		})
	}
}

func TestDisabledCostsNoAllocation(t *testing.T) {
	l := newLogger(t, Config{Level: "debug"}, newRecordHandler(slog.LevelInfo))
	interceptor := l.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: echo}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { interceptor(ctx, nil, info, handler) }); n != 0 {
		t.Errorf("%v allocations per disabled call, want 0", n)
	}
}

func TestSetConfig(t *testing.T) {
	h := newRecordHandler(slog.LevelDebug)
	l := newLogger(t, Config{Level: "info"}, h)
	c := serve(t, l, nil)

	hello(t.Context(), c, "ada")
	if err := l.SetConfig(Config{Level: "loud"}); err == nil || !strings.HasPrefix(err.Error(), "logging: level") {
		t.Errorf("SetConfig(level loud) = %v, want a logging: level error", err)
	}
	if diff := cmp.Diff(Config{Level: "info"}, l.Config()); diff != "" {
		t.Errorf("config after a refused change (-want +got):\n%s", diff)
	}
	hello(t.Context(), c, "ada")
	if err := l.SetConfig(Config{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	hello(t.Context(), c, "ada")
	got := []slog.Level{h.next(t).Level, h.next(t).Level, h.next(t).Level}
	if diff := cmp.Diff([]slog.Level{slog.LevelInfo, slog.LevelInfo, slog.LevelDebug}, got); diff != "" {
		t.Errorf("levels (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string
	}{
		{DefaultConfig(), ""},
		{Config{Level: "warn", SlowThreshold: duration.Duration(time.Second)}, ""},
		{Config{Level: "info+2"}, ""},
		{Config{Level: ""}, "logging: level"},
		{Config{Level: "verbose"}, "logging: level"},
		{Config{Level: "info", SlowThreshold: -1}, "logging: slow_threshold"},
		{Config{Level: "info", ErrorLevel: "loud"}, "logging: error_level"},
	} {
		err := tc.cfg.Validate()
		if tc.wantErr == "" && err != nil {
			t.Errorf("%+v: Validate() = %v", tc.cfg, err)
		}
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("%+v: Validate() = %v, want prefix %q", tc.cfg, err, tc.wantErr)
			}
			if _, err := New(tc.cfg); err == nil {
				t.Errorf("%+v: New accepted an invalid config", tc.cfg)
			}
		}
	}
}

func TestConfigText(t *testing.T) {
	in := `{"level":"warn","error_level":"error","slow_threshold":"250ms"}`
	var got Config
	if err := json.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := Config{Level: "warn", ErrorLevel: "error", SlowThreshold: duration.Duration(250 * time.Millisecond)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("encoded %s, want %s", out, in)
	}
	if err := json.Unmarshal([]byte(`{"slow_threshold":"soon"}`), &got); err == nil {
		t.Error("decoding a bad duration succeeded")
	}
}

// With the defaults, successful calls log at debug and failed ones at info.
func TestDefaultLevels(t *testing.T) {
	h := newRecordHandler(slog.LevelDebug)
	c := serve(t, newLogger(t, DefaultConfig(), h), nil)
	hello(t.Context(), c, "ada")
	if got := h.next(t).Level; got != slog.LevelDebug {
		t.Errorf("successful call logged at %v, want DEBUG", got)
	}
	hello(t.Context(), c, "") // InvalidArgument: no message
	if got := h.next(t).Level; got != slog.LevelInfo {
		t.Errorf("failed call logged at %v, want INFO", got)
	}
}

// With the defaults and a logger at info, failed calls are logged and
// successful ones are not.
func TestDefaultLevelsAtInfo(t *testing.T) {
	h := newRecordHandler(slog.LevelInfo)
	c := serve(t, newLogger(t, DefaultConfig(), h), nil)
	hello(t.Context(), c, "ada")
	hello(t.Context(), c, "") // InvalidArgument
	if r := h.next(t); r.Level != slog.LevelInfo || r.Attrs["code"] != "INVALID_ARGUMENT" {
		t.Errorf("record %v %v, want the failed call at INFO", r.Level, r.Attrs)
	}
}

// A handler that panics is logged as INTERNAL, and the panic goes on to the
// recovery layer outside this one.
func TestPanicIsLogged(t *testing.T) {
	h := newRecordHandler(slog.LevelDebug)
	l := newLogger(t, Config{Level: "info"}, h)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed")
			}
		}()
		l.UnaryServerInterceptor()(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"},
			func(context.Context, any) (any, error) { panic("boom") })
	}()
	if r := h.next(t); r.Attrs["code"] != "INTERNAL" || r.Attrs["method"] != "/x.Y/Z" {
		t.Errorf("panicking call logged with %v, want code Internal", r.Attrs)
	}
}
