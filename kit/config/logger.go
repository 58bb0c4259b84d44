package config

import (
	"errors"
	"io"
	"log/slog"
)

// Logger returns a logger writing to w in the log section's format, whose
// level follows log.level as the configuration changes. It fails when T
// does not embed [Standard].
func (s *Store[T]) Logger(w io.Writer) (*slog.Logger, error) {
	std := s.Standard()
	if std == nil {
		return nil, errors.New("config: Logger: the configuration has no standard log section")
	}
	// Subscribe first, then read the current level: a change in between is
	// then delivered rather than lost. The logger lives as long as the store.
	level := new(slog.LevelVar)
	s.Subscribe(func(snap *Snapshot[T]) {
		if l, err := snap.Standard().Log.level(); err == nil {
			level.Set(l)
		}
	})
	lv, err := s.Standard().Log.level()
	if err != nil {
		return nil, err
	}
	level.Set(lv)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if std.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", s.name), nil
}
