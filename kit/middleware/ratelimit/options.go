package ratelimit

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Option configures [New] and [NewClient].
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

// WithLogger sets the logger configuration changes are written to (rejected
// calls are counted, not logged). Default: a logger that discards
// everything. nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithMeterProvider sets the provider of the limiter's own counter
// (grpckit.ratelimit.limited). Default: a no-op provider, never the global
// one. nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	})
}

const scope = "github.com/grpckit/grpckit/kit/middleware/ratelimit"

// newLimitedCounter creates grpckit.ratelimit.limited.
func newLimitedCounter(mp metric.MeterProvider) (metric.Int64Counter, error) {
	return mp.Meter(scope).Int64Counter("grpckit.ratelimit.limited",
		metric.WithDescription("Calls rejected by a rate limit, by layer (global, method, caller on the server; client) and method."),
		metric.WithUnit("{call}"))
}
