package timeout_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/metric/noop"
	yamlv3 "go.yaml.in/yaml/v3"
	yamlv4 "go.yaml.in/yaml/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/duration"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     timeout.Config
		wantErr string // substring; "" means valid
	}{
		{"defaults", timeout.DefaultConfig(), ""},
		{"zero", timeout.Config{}, ""},
		{"per method", timeout.Config{PerMethod: map[string]duration.Duration{echo: duration.Duration(time.Second), "/user.v1.UserService/*": 0}}, ""},
		{"negative default", timeout.Config{Default: -1}, "timeout: default:"},
		{"negative server max", timeout.Config{ServerMax: duration.Duration(-time.Second)}, "timeout: server_max:"},
		{"negative per method", timeout.Config{PerMethod: map[string]duration.Duration{echo: -1}}, "timeout: per_method["},
		{"no slash", timeout.Config{PerMethod: map[string]duration.Duration{"Echo": 1}}, "timeout: per_method:"},
		{"no method", timeout.Config{PerMethod: map[string]duration.Duration{"/testpb.v1.TestService/": 1}}, "timeout: per_method:"},
		{"no service", timeout.Config{PerMethod: map[string]duration.Duration{"//Echo": 1}}, "timeout: per_method:"},
		{"partial wildcard", timeout.Config{PerMethod: map[string]duration.Duration{"/testpb.v1.TestService/Ec*": 1}}, "timeout: per_method:"},
		{"too many parts", timeout.Config{PerMethod: map[string]duration.Duration{"/a/b/c": 1}}, "timeout: per_method:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error starting with %q", err, tc.wantErr)
			}
			if _, nerr := timeout.New(tc.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New error %v disagrees with Validate error %v", nerr, err)
			}
		})
	}
}

func TestUnaryClientDeadline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    timeout.Config
		caller time.Duration // 0: the caller sets no deadline
		want   deadline
	}{
		{"default applies", timeout.Config{Default: duration.Duration(5 * time.Second)}, 0, deadline{true, 5}},
		{"no default", timeout.Config{}, 0, deadline{}},
		{"exact method wins", timeout.Config{Default: duration.Duration(5 * time.Second), PerMethod: map[string]duration.Duration{
			echo: duration.Duration(2 * time.Second), testService: duration.Duration(3 * time.Second)}}, 0, deadline{true, 2}},
		{"service wildcard", timeout.Config{Default: duration.Duration(5 * time.Second), PerMethod: map[string]duration.Duration{
			testService: duration.Duration(3 * time.Second), "/user.v1.UserService/GetUser": duration.Duration(time.Second)}}, 0, deadline{true, 3}},
		{"per method zero means none", timeout.Config{Default: duration.Duration(5 * time.Second), PerMethod: map[string]duration.Duration{echo: 0}}, 0, deadline{}},
		{"caller deadline never extended", timeout.Config{Default: duration.Duration(5 * time.Second)}, time.Second, deadline{true, 1}},
		{"caller deadline never shortened", timeout.Config{Default: duration.Duration(5 * time.Second)}, 10 * time.Second, deadline{true, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, err := timeout.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := make(recorder, 1)
			c := startServer(t, []grpc.ServerOption{grpc.UnaryInterceptor(rec.unary)},
				grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
			if _, err := c.Echo(callContext(t, tc.caller), &testpbv1.EchoRequest{Message: "a"}); err != nil {
				t.Fatalf("Echo: %v", err)
			}
			if diff := cmp.Diff(tc.want, <-rec); diff != "" {
				t.Errorf("server-side deadline (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStreamClientDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  timeout.Config
		want deadline
	}{
		{"default does not apply to streams", timeout.Config{Default: duration.Duration(5 * time.Second)}, deadline{}},
		{"per method applies", timeout.Config{Default: duration.Duration(5 * time.Second), PerMethod: map[string]duration.Duration{echoStream: duration.Duration(2 * time.Second)}}, deadline{true, 2}},
		{"service applies", timeout.Config{PerMethod: map[string]duration.Duration{testService: duration.Duration(3 * time.Second)}}, deadline{true, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, err := timeout.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := make(recorder, 1)
			c := startServer(t, []grpc.ServerOption{grpc.StreamInterceptor(rec.stream)},
				grpc.WithStreamInterceptor(to.StreamClientInterceptor()))
			stream, err := c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "a", Count: 2})
			if err != nil {
				t.Fatalf("EchoStream: %v", err)
			}
			if got := drain(t, stream); got != 2 {
				t.Errorf("received %d messages, want 2", got)
			}
			if diff := cmp.Diff(tc.want, <-rec); diff != "" {
				t.Errorf("server-side deadline (-want +got):\n%s", diff)
			}
		})
	}
}

// drain receives until the end of stream and returns the message count.
func drain(t *testing.T, stream grpc.ServerStreamingClient[testpbv1.EchoStreamResponse]) int {
	t.Helper()
	n := 0
	for {
		_, err := stream.Recv()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		n++
	}
}

func TestServerCap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		serverMax time.Duration
		caller    time.Duration
		want      deadline
	}{
		{"no deadline gets server max", 3 * time.Second, 0, deadline{true, 3}},
		{"long deadline capped", 3 * time.Second, time.Hour, deadline{true, 3}},
		{"short deadline kept", 3 * time.Second, time.Second, deadline{true, 1}},
		{"no cap", 0, 0, deadline{}},
		{"no cap keeps long deadline", 0, time.Hour, deadline{true, 3600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, err := timeout.New(timeout.Config{ServerMax: duration.Duration(tc.serverMax)})
			if err != nil {
				t.Fatal(err)
			}
			rec := make(recorder, 2)
			c := startServer(t, []grpc.ServerOption{
				grpc.ChainUnaryInterceptor(to.UnaryServerInterceptor(), rec.unary),
				grpc.ChainStreamInterceptor(to.StreamServerInterceptor(), rec.stream),
			})
			if _, err := c.Echo(callContext(t, tc.caller), &testpbv1.EchoRequest{Message: "a"}); err != nil {
				t.Fatalf("Echo: %v", err)
			}
			if diff := cmp.Diff(tc.want, <-rec); diff != "" {
				t.Errorf("unary handler deadline (-want +got):\n%s", diff)
			}
			stream, err := c.EchoStream(callContext(t, tc.caller), &testpbv1.EchoStreamRequest{Message: "a", Count: 1})
			if err != nil {
				t.Fatalf("EchoStream: %v", err)
			}
			drain(t, stream)
			want := tc.want
			if tc.caller == 0 {
				want = deadline{} // a stream without a deadline keeps none (a watch may be long-lived)
			}
			if diff := cmp.Diff(want, <-rec); diff != "" {
				t.Errorf("stream handler deadline (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetConfig(t *testing.T) {
	to, err := timeout.New(timeout.Config{Default: duration.Duration(5 * time.Second)}, timeout.WithMeterProvider(noop.NewMeterProvider()), timeout.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	rec := make(recorder, 1)
	c := startServer(t, []grpc.ServerOption{grpc.UnaryInterceptor(rec.unary)},
		grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
	call := func() deadline {
		t.Helper()
		if _, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"}); err != nil {
			t.Fatalf("Echo: %v", err)
		}
		return <-rec
	}
	if err := to.SetConfig(timeout.Config{Default: duration.Duration(-time.Second)}); err == nil {
		t.Fatal("SetConfig(invalid) = nil, want an error")
	}
	if diff := cmp.Diff(deadline{true, 5}, call()); diff != "" {
		t.Errorf("after a rejected config (-want +got):\n%s", diff)
	}
	if err := to.SetConfig(timeout.Config{Default: duration.Duration(2 * time.Second)}); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if diff := cmp.Diff(deadline{true, 2}, call()); diff != "" {
		t.Errorf("after SetConfig (-want +got):\n%s", diff)
	}
}

// TestSetConfigConcurrent changes the config while calls run; -race checks it.
func TestSetConfigConcurrent(t *testing.T) {
	to, err := timeout.New(timeout.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := startServer(t, []grpc.ServerOption{grpc.UnaryInterceptor(to.UnaryServerInterceptor())},
		grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			cfg := timeout.DefaultConfig()
			cfg.PerMethod = map[string]duration.Duration{echo: duration.Duration(time.Duration(i+1) * time.Second)}
			if err := to.SetConfig(cfg); err != nil {
				t.Errorf("SetConfig: %v", err)
			}
		}
	}()
	for range 50 {
		if _, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"}); err != nil {
			t.Fatalf("Echo: %v", err)
		}
	}
	<-done
}

const yamlDoc = `
default: 1m30s
per_method:
  /user.v1.UserService/GetUser: 250ms
  /user.v1.UserService/*: 2s
server_max: 30s
`

func TestConfigYAML(t *testing.T) {
	want := timeout.Config{
		Default: duration.Duration(90 * time.Second),
		PerMethod: map[string]duration.Duration{
			"/user.v1.UserService/GetUser": duration.Duration(250 * time.Millisecond),
			"/user.v1.UserService/*":       duration.Duration(2 * time.Second),
		},
		ServerMax: duration.Duration(30 * time.Second),
	}
	for _, tc := range []struct {
		name      string
		unmarshal func([]byte, any) error
		marshal   func(any) ([]byte, error)
	}{
		{"yaml v3", yamlv3.Unmarshal, yamlv3.Marshal},
		{"yaml v4", yamlv4.Unmarshal, yamlv4.Marshal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := timeout.DefaultConfig()
			if err := tc.unmarshal([]byte(yamlDoc), &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded config (-want +got):\n%s", diff)
			}
			out, err := tc.marshal(got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !strings.Contains(string(out), "default: 1m30s") {
				t.Errorf("Marshal wrote durations not as text:\n%s", out)
			}
			var back timeout.Config
			if err := tc.unmarshal(out, &back); err != nil {
				t.Fatalf("Unmarshal(Marshal): %v", err)
			}
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeadlineExceeded checks that an applied deadline really ends a call.
func TestDeadlineExceeded(t *testing.T) {
	to, err := timeout.New(timeout.Config{PerMethod: map[string]duration.Duration{echo: duration.Duration(50 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	block := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c := startServer(t, []grpc.ServerOption{grpc.UnaryInterceptor(block)},
		grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
	_, err = c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Echo error = %v, want DeadlineExceeded", err)
	}
}
