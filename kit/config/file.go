package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchFile reloads the file when it changes. It watches the file's
// directory, not the file, so that an atomic save (write a temporary file,
// rename it over the old one) is seen; events about other names, such as
// an editor's swap, backup and probe files (.config.yaml.swp, config.yaml~,
// 4913), are ignored. Events closer together than the debounce interval
// make one reload, and a file whose contents did not change makes none.
func (s *Store[T]) watchFile(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", s.o.file, err)
	}
	path, err := filepath.Abs(s.o.file)
	if err != nil {
		w.Close()
		return fmt.Errorf("config: watch %s: %w", s.o.file, err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return fmt.Errorf("config: watch %s: %w", s.o.file, err)
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		defer w.Close()
		var fire <-chan time.Time // set while a reload is pending
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != path || ev.Op == fsnotify.Chmod {
					continue
				}
				fire = time.After(s.o.debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.o.logger.LogAttrs(ctx, slog.LevelWarn, "config: file watch error", slog.String("file", s.o.file), slog.Any("error", err))
			case <-fire:
				fire = nil
				s.reloadFile()
			}
		}
	}()
	return nil
}

// reloadFile reads the file and applies it when its contents changed. A
// missing file (between the removal and the rename of a save) changes
// nothing; the next event reloads.
func (s *Store[T]) reloadFile() {
	b, err := os.ReadFile(s.o.file)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, fs.ErrNotExist) {
			level = slog.LevelDebug
		}
		s.o.logger.LogAttrs(context.Background(), level, "config: file unreadable; keeping the configuration as it is",
			slog.String("file", s.o.file), slog.Any("error", err))
		return
	}
	s.mu.Lock()
	same := bytes.Equal(b, s.layers.file)
	s.mu.Unlock()
	if same {
		return
	}
	s.change("file "+s.o.file, func(l *layers) { l.file = b })
}
