package user

import "log/slog"

// Option configures a [Server].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger          *slog.Logger
	requireIdentity bool
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

// RequireIdentity makes UpdateUser and DeleteUser refuse (PERMISSION_DENIED)
// a call that no token authenticated, as well as one whose token may not act
// for the user. Without it such a call is let through: the server then
// trusts its callers (a server without an auth layer). The user command sets
// it unless auth.disabled is true, so that listing the methods in
// auth.public_methods does not open them to everyone.
func RequireIdentity() Option {
	return optionFunc(func(o *options) { o.requireIdentity = true })
}
