// Package telemetry wires OpenTelemetry into grpckit: metrics and spans for
// every call, recorded by interceptors in the shape otelgrpc gives them (not
// by stats handlers), W3C trace context and baggage propagation, Prometheus
// text exposition for the admin /metrics endpoint, and an OTLP span exporter
// when the standard OTEL_* environment asks for one.
//
// A [Telemetry] owns its providers: nothing here reads or sets the OTel
// globals (otel.SetTracerProvider and friends). kit's servers and clients
// put its interceptors in their chains; on a bare grpc-go server or client
// pass [Telemetry.ServerOptions] or [Telemetry.DialOptions], and
// [Telemetry.MeterProvider] to code that records its own metrics.
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
// # Why interceptors, not otelgrpc's stats handlers
//
// Calls are measured inside kit's chain, and spans made there too: the
// metrics with the names, descriptions, units, attribute sets and bucket
// boundaries otelgrpc v0.72 uses for the stable RPC conventions, the spans
// with its names, kinds, attributes, statuses and parents
// (TestMetricsMatchOtelgrpc and TestSpansMatchOtelgrpc compare the two on
// the same calls), so that dashboards, alerts and trace views do not
// change. A stats handler costs grpc-go some 33 allocations per call before
// it does anything, and otelgrpc builds and hashes its attribute sets,
// copies the metadata and formats addresses on every call; here span start
// options and formatted addresses are cached per method and address, and
// each histogram (one per method, code and server address) is made once and
// updated with atomic adds, then handed to the metric reader as a
// metric.Producer at collection: a synchronous OTel instrument would
// normalize and hash the attribute set on every call, half the cost of
// recording. The default telemetry (metrics, no span) adds 3 allocations
// per call over bare grpc-go, client and server together (the ones grpc-go
// makes for having an interceptor at all). Histograms carry no exemplars.
//
// What differs from otelgrpc:
//
//   - a server call is timed (and its span lasts) from the first
//     interceptor to the handler's return: reading the request and writing
//     the response are left out, so a request that fails to decode is not
//     counted, and a response that fails to be sent is counted with the
//     handler's code;
//   - a client call is counted once, with its final code and the time its
//     retries and backoff took (a retry is not a call of its own; a call
//     refused locally, by an open breaker or the throttle, is one, without
//     a server address), while every attempt kit's retry layer makes gets
//     a span of its own, as with otelgrpc; retries grpc-go makes itself
//     (transparent retries, a service config's retry policy) share one;
//   - only the stable RPC conventions are recorded:
//     OTEL_SEMCONV_STABILITY_OPT_IN, which switches otelgrpc to the old
//     ones, is not read;
//   - the instrumentation scope is this package's.
package telemetry
