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
	level := new(slog.LevelVar)
	lv, err := std.Log.level()
	if err != nil {
		return nil, err
	}
	level.Set(lv)
	s.Subscribe(func(snap *Snapshot[T]) {
		if l, err := standardOf(&snap.Value).Log.level(); err == nil {
			level.Set(l)
		}
	})
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if std.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", s.name), nil
}
