package gateway

import (
	"log/slog"
	"time"

	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger    *slog.Logger
	telemetry *telemetry.Telemetry
	now       func() time.Time
}

var defaultOptions = options{
	logger: slog.New(slog.DiscardHandler),
	now:    time.Now,
}

// WithLogger sets the logger of the access log (one record per request:
// debug level for successes, info for 4xx answers, warn for 5xx) and of
// failed backend calls. Default: discard. A nil l keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithTelemetry makes the gateway trace requests (a server span per request,
// continuing a W3C trace context of the request's headers; the backend
// calls of kit clients sharing t become its children) and count them in
// t's metrics: grpckit.gateway.requests and grpckit.gateway.request.duration
// by method, route and status, and grpckit.gateway.rate_limited by scope
// (client or global). Default: neither. A nil t keeps the default.
func WithTelemetry(t *telemetry.Telemetry) Option {
	return optionFunc(func(o *options) {
		if t != nil {
			o.telemetry = t
		}
	})
}

// withClock sets the clock of the rate limits and durations; for tests.
func withClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}
