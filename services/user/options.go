package user

import "log/slog"

// Option configures a [Server].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger *slog.Logger
}

var defaultOptions = options{
	logger: slog.New(slog.DiscardHandler),
}

// WithLogger sets the logger for unexpected store errors. Default: discard.
// A nil l keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}
