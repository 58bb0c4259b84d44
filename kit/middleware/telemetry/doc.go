// Package telemetry wires OpenTelemetry into grpckit: tracing and metrics
// for every call through gRPC stats handlers (not interceptors; spans by
// otelgrpc), W3C trace context and baggage propagation, Prometheus text exposition for the
// admin /metrics endpoint, and an OTLP span exporter when the standard OTEL_*
// environment asks for one.
//
// A [Telemetry] owns its providers: nothing here reads or sets the OTel
// globals (otel.SetTracerProvider and friends). Pass [Telemetry.ServerHandler]
// to grpc.StatsHandler on the server, [Telemetry.ClientHandler] to
// grpc.WithStatsHandler on clients, and [Telemetry.MeterProvider] to code that
// records its own metrics.
//
// # Traces
//
// With the defaults and no OTEL_* environment no exporter runs and no span is
// recorded: the tracer provider is a no-op one, which still carries an
// incoming trace context through to outgoing calls, so a service without an
// exporter does not break the traces of its callers. A span exporter is set
// up when
//
//   - OTEL_TRACES_EXPORTER names one ("otlp", "console"; "none" turns tracing
//     off), or
//   - OTEL_TRACES_EXPORTER is unset and OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (OTLP),
//
// unless OTEL_SDK_DISABLED=true. The exporter is OTLP (otlptracehttp or
// otlptracegrpc) or stdouttrace for "console", and follows the usual
// OTEL_EXPORTER_OTLP_* variables (protocol http/protobuf by default, or grpc;
// endpoint, headers, timeout); spans are batched (OTEL_BSP_* tune the batch).
// (This is the trace part of contrib's autoexport, which the package does
// not use: autoexport would bring its log and metric exporters into every
// importer's module graph.)
// Sampling follows [Config.TracesSampler]. The resource carries service.name
// from [Config.ServiceName] plus OTEL_RESOURCE_ATTRIBUTES.
//
// # Metrics
//
// With [Config.Metrics] on (the default) an OTel MeterProvider is backed by
// the Prometheus exporter registered on a registry of this Telemetry's own
// (never prometheus.DefaultRegisterer), along with the Go runtime and process
// collectors; [Telemetry.MetricsHandler] serves that registry. Every call
// is counted in two histograms, in seconds, with otelgrpc's bucket
// boundaries:
//
//	rpc_server_call_duration_seconds  labels rpc_method ("pkg.Service/Method"),
//	                                  rpc_response_status_code ("OK", "NOT_FOUND", ...),
//	                                  rpc_system_name ("grpc"), error_type (server faults
//	                                  only: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
//	                                  INTERNAL, UNAVAILABLE, DATA_LOSS)
//	rpc_client_call_duration_seconds  the same, error_type on every non-OK code, plus
//	                                  server_address and server_port of the endpoint
//
// plus the otel_scope_* labels and a target_info series carrying the
// resource (service_name).
//
// # The stats handlers
//
// Spans are made by the otelgrpc stats handlers (v0.72) when a span
// exporter runs. The RPC metrics above are recorded by this package, with
// the instruments, attribute sets and bucket boundaries otelgrpc v0.72 uses
// for the stable RPC conventions (a test checks the two produce the same
// series), but with the attribute sets cached per method, code and server
// address: otelgrpc builds and hashes a new set on every call. Without a
// span exporter otelgrpc is left out altogether and the handlers only carry
// the caller's trace context and baggage through. Per call (client and
// server together) the default handlers add 36 allocations over bare
// grpc-go, of which 33 are grpc-go's own cost of having a stats handler at
// all (event structs, metadata and peer copies; see BenchmarkUnary).
package telemetry
