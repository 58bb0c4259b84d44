package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Exporter names reported by [Telemetry.TracesExporter].
const (
	ExporterNone    = "none"    // no span is recorded
	ExporterOTLP    = "otlp"    // OTLP, from the OTEL_EXPORTER_OTLP_* environment
	ExporterConsole = "console" // pretty-printed JSON on stdout
	ExporterCustom  = "custom"  // given by WithSpanExporter or WithSyncSpanExporter
)

// tracesExporterName decides from the environment which span exporter runs:
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none mean none; an explicit
// OTEL_TRACES_EXPORTER wins; otherwise OTLP runs only when an OTLP endpoint
// is set.
func tracesExporterName(env func(string) string) string {
	if strings.EqualFold(strings.TrimSpace(env("OTEL_SDK_DISABLED")), "true") {
		return ExporterNone
	}
	if name := strings.ToLower(strings.TrimSpace(env("OTEL_TRACES_EXPORTER"))); name != "" {
		return name
	}
	if env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		return ExporterOTLP
	}
	return ExporterNone
}

// newSpanExporter builds the exporter called name (see [tracesExporterName])
// from env, the environment given by [WithEnv]: "console" is stdouttrace,
// "otlp" the OTLP exporter of the protocol that OTEL_EXPORTER_OTLP_PROTOCOL
// (or its _TRACES_ variant) names, http/protobuf by default, sent to the
// endpoint that OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names, else
// OTEL_EXPORTER_OTLP_ENDPOINT (plus /v1/traces over HTTP, as the
// specification says). The exporters read the other OTEL_EXPORTER_OTLP_*
// variables (headers, timeout, compression, certificates) from the process
// environment themselves.
//
// This is the part of go.opentelemetry.io/contrib/exporters/autoexport that
// traces need, without the log and metric exporters that autoexport brings
// into every importer's module graph.
func newSpanExporter(ctx context.Context, name string, env func(string) string) (sdktrace.SpanExporter, error) {
	exp, err := envExporter(ctx, name, env)
	if err != nil {
		return nil, fmt.Errorf("telemetry: span exporter %q: %w", name, err)
	}
	return exp, nil
}

func envExporter(ctx context.Context, name string, env func(string) string) (sdktrace.SpanExporter, error) {
	switch name {
	case ExporterConsole:
		return stdouttrace.New()
	case ExporterOTLP:
	default:
		return nil, fmt.Errorf("unsupported OTEL_TRACES_EXPORTER %q (want otlp, console or none)", name)
	}
	proto := env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	signalURL, baseURL := env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), env("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch proto {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		switch {
		case signalURL != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(signalURL))
		case baseURL != "":
			// The base URL gets the signal path appended, as the spec says.
			u, err := url.Parse(baseURL)
			if err != nil {
				return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
			}
			u.Path = path.Join(u.Path, "/v1/traces")
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		}
		return otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		switch {
		case signalURL != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(signalURL))
		case baseURL != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(baseURL))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("unsupported OTLP protocol %q (want http/protobuf or grpc)", proto)
}

// abortableExporter cancels its in-flight and later exports once done is
// closed. The batch span processor exports with a context of its own
// (OTEL_BSP_EXPORT_TIMEOUT, 30s by default) and keeps exporting after a
// Shutdown whose ctx ended; [Telemetry.Shutdown] closes done at that point so
// that no export outlives it for long.
type abortableExporter struct {
	sdktrace.SpanExporter
	done <-chan struct{}
}

func (e abortableExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return e.SpanExporter.ExportSpans(ctx, spans)
}
