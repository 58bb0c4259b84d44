package overload

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Option configures [NewServer] and [NewClient].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

func defaultOptions(opts []Option) options {
	o := options{
		logger:        slog.New(slog.DiscardHandler),
		meterProvider: noop.NewMeterProvider(),
	}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// WithLogger sets the logger configuration changes are written to (refused
// calls are counted, not logged). Default: a logger that discards
// everything. nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithMeterProvider sets the provider of the layer's instruments:
// grpckit.overload.refused, and on a server grpckit.overload.limit and
// grpckit.overload.in_flight. Default: a no-op provider, never the global
// one. nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	})
}

const scope = "github.com/grpckit/grpckit/kit/middleware/overload"

// newRefusedCounter creates grpckit.overload.refused.
func newRefusedCounter(mp metric.MeterProvider) (metric.Int64Counter, error) {
	return mp.Meter(scope).Int64Counter("grpckit.overload.refused",
		metric.WithDescription("Calls refused for overload: by a server's concurrency limit (side server) or a client's adaptive throttle (side client), by method."),
		metric.WithUnit("{call}"))
}
