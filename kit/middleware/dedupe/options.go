package dedupe

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

func defaultOptions() options {
	return options{
		logger:        slog.New(slog.DiscardHandler),
		meterProvider: noop.NewMeterProvider(),
	}
}

// WithLogger sets the logger replays are written to (at debug level). Default:
// a logger that discards everything. nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithMeterProvider sets the provider of the package's own counters
// (grpckit.dedupe.replays, grpckit.dedupe.waits, grpckit.dedupe.refusals,
// grpckit.dedupe.evictions).
// Default: a no-op provider, never the global one. nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	})
}
