package telemetry

import (
	"io"
	"log/slog"
	"os"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	env      func(string) string
	exporter sdktrace.SpanExporter
	sync     bool
	logger   *slog.Logger
}

var defaultOptions = options{
	env:    os.Getenv,
	logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
}

// WithSpanExporter sends spans to e, batched, whatever the environment says;
// [Telemetry.Shutdown] shuts e down. For tests and custom back ends.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return optionFunc(func(o *options) { o.exporter, o.sync = e, false })
}

// WithSyncSpanExporter sends each span to e as it ends, without batching,
// whatever the environment says; [Telemetry.Shutdown] shuts e down. Meant for
// tests with an in-memory exporter (tracetest.NewInMemoryExporter), where a
// span must be visible as soon as the call returns.
func WithSyncSpanExporter(e sdktrace.SpanExporter) Option {
	return optionFunc(func(o *options) { o.exporter, o.sync = e, true })
}

// WithEnv replaces os.Getenv as the source of the OTEL_* variables that decide
// whether and where spans are exported, the sampler when
// [Config.TracesSampler] is empty, and OTEL_RESOURCE_ATTRIBUTES. Variables
// read by the OTel SDK and exporters themselves (OTEL_BSP_*, OTLP headers,
// timeouts and certificates) still come from the process environment.
func WithEnv(getenv func(string) string) Option {
	return optionFunc(func(o *options) {
		if getenv != nil {
			o.env = getenv
		}
	})
}

// WithLogger sets the logger that reports the chosen exporter. Default:
// discard.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}
