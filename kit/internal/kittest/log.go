package kittest

import (
	"context"
	"log/slog"
)

// Messages is a slog.Handler that sends the message of every record on the
// channel, or drops it when the channel is full: make(Messages, n), then
// slog.New(m), and read what was logged from m.
type Messages chan string

var _ slog.Handler = Messages(nil)

// Enabled reports true for every level.
func (Messages) Enabled(context.Context, slog.Level) bool { return true }

// Handle sends r's message, unless the channel is full.
func (m Messages) Handle(_ context.Context, r slog.Record) error {
	select {
	case m <- r.Message:
	default:
	}
	return nil
}

// WithAttrs returns m: attributes are not kept.
func (m Messages) WithAttrs([]slog.Attr) slog.Handler { return m }

// WithGroup returns m: groups are not kept.
func (m Messages) WithGroup(string) slog.Handler { return m }
