// Package interop_test runs grpc-go's own interop cases through a kit
// server and a kit client with their default chains: whatever kit's layers
// do to a call, grpc-go's semantics (streaming, deadlines, cancellation,
// metadata, status codes and messages, unimplemented methods) must come
// through unchanged.
package interop_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

func TestMain(m *testing.M) {
	// grpc-go's interop cases report a failure with grpclog's Fatal, which
	// exits the process: make it a panic that the test turns into a failure.
	grpclog.SetLoggerV2(fatalPanics{})
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fatal is the panic of fatalPanics.
type fatal struct{ msg string }

// fatalPanics is a grpclog logger that drops every log but a fatal one,
// which it panics with.
type fatalPanics struct{}

func (fatalPanics) Info(...any)                   {}
func (fatalPanics) Infoln(...any)                 {}
func (fatalPanics) Infof(string, ...any)          {}
func (fatalPanics) Warning(...any)                {}
func (fatalPanics) Warningln(...any)              {}
func (fatalPanics) Warningf(string, ...any)       {}
func (fatalPanics) Error(...any)                  {}
func (fatalPanics) Errorln(...any)                {}
func (fatalPanics) Errorf(string, ...any)         {}
func (fatalPanics) V(int) bool                    { return false }
func (fatalPanics) InfoDepth(int, ...any)         {}
func (fatalPanics) WarningDepth(int, ...any)      {}
func (fatalPanics) ErrorDepth(int, ...any)        {}
func (fatalPanics) Fatal(args ...any)             { panic(fatal{fmt.Sprint(args...)}) }
func (fatalPanics) Fatalln(args ...any)           { panic(fatal{fmt.Sprintln(args...)}) }
func (fatalPanics) Fatalf(f string, args ...any)  { panic(fatal{fmt.Sprintf(f, args...)}) }
func (fatalPanics) FatalDepth(_ int, args ...any) { panic(fatal{fmt.Sprint(args...)}) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestInteropThroughKit serves grpc-go's interop test server from a kit
// server and runs grpc-go's interop client cases through a kit client, with
// kit's default chains (metrics on, no exporter), and again with every call
// traced.
func TestInteropThroughKit(t *testing.T) {
	for _, traced := range []bool{false, true} {
		name := "default chains"
		if traced {
			name = "default chains, traced"
		}
		t.Run(name, func(t *testing.T) {
			var opts []kit.Option
			var spans *tracetest.InMemoryExporter
			if traced {
				spans = tracetest.NewInMemoryExporter()
				cfg := telemetry.DefaultConfig()
				cfg.ServiceName, cfg.TracesSampler = "interop", "always_on"
				tel, err := telemetry.New(t.Context(), cfg, telemetry.WithSyncSpanExporter(spans))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
				opts = append(opts, kit.WithTelemetry(tel))
			}
			sopts := []kit.ServerOption{kit.WithDrain(0), kit.WithLogger(quiet), kit.WithAdminAddress("")}
			copts := []kit.ClientOption{}
			for _, o := range opts {
				sopts, copts = append(sopts, o), append(copts, o)
			}
			srv, err := kit.NewServer(sopts...)
			if err != nil {
				t.Fatal(err)
			}
			testgrpc.RegisterTestServiceServer(srv, interop.NewTestServer())
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			cc, err := kit.NewClient("passthrough:///"+lis.Addr().String(), copts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cc.Close()
				if err := srv.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				if err := <-served; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
			tc := testgrpc.NewTestServiceClient(cc)

			for _, c := range []struct {
				name string
				run  func(ctx context.Context)
			}{
				{"empty_unary", func(ctx context.Context) { interop.DoEmptyUnaryCall(ctx, tc) }},
				{"large_unary", func(ctx context.Context) { interop.DoLargeUnaryCall(ctx, tc) }},
				{"client_streaming", func(ctx context.Context) { interop.DoClientStreaming(ctx, tc) }},
				{"server_streaming", func(ctx context.Context) { interop.DoServerStreaming(ctx, tc) }},
				{"ping_pong", func(ctx context.Context) { interop.DoPingPong(ctx, tc) }},
				{"empty_stream", func(ctx context.Context) { interop.DoEmptyStream(ctx, tc) }},
				{"timeout_on_sleeping_server", func(ctx context.Context) { interop.DoTimeoutOnSleepingServer(ctx, tc) }},
				{"cancel_after_begin", func(ctx context.Context) { interop.DoCancelAfterBegin(ctx, tc) }},
				{"cancel_after_first_response", func(ctx context.Context) { interop.DoCancelAfterFirstResponse(ctx, tc) }},
				{"custom_metadata", func(ctx context.Context) { interop.DoCustomMetadata(ctx, tc) }},
				{"status_code_and_message", func(ctx context.Context) { interop.DoStatusCodeAndMessage(ctx, tc) }},
				{"special_status_message", func(ctx context.Context) { interop.DoSpecialStatusMessage(ctx, tc) }},
				{"unimplemented_method", func(ctx context.Context) { interop.DoUnimplementedMethod(ctx, cc) }},
				{"unimplemented_service", func(ctx context.Context) {
					interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(cc))
				}},
			} {
				t.Run(c.name, func(t *testing.T) {
					// cancel_after_begin races in grpc-go itself: after
					// cancel(), CloseAndRecv's END_STREAM can reach the server
					// before the cancellation's RST_STREAM, and the server's
					// answer then races the cancellation in RecvMsg (both
					// ready: either wins). Over loopback under -race it is
					// seen about once in 150 runs; it gets three tries, the
					// other cases one.
					tries := 1
					if c.name == "cancel_after_begin" {
						tries = 3
					}
					var msg string
					for range tries {
						if msg = runCase(t.Context(), c.run); msg == "" {
							return
						}
					}
					t.Fatalf("%s: %s", c.name, msg)
				})
			}
			if traced && len(spans.GetSpans()) == 0 {
				t.Error("tracing on, but no span was recorded")
			}
		})
	}
}

// runCase runs an interop case and returns its fatal message, "" when it
// passed.
func runCase(ctx context.Context, run func(ctx context.Context)) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			msg = f.msg
		}
	}()
	run(ctx)
	return ""
}
