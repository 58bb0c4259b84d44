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
// rename it over the old one) is seen, and a Kubernetes ConfigMap update
// (the ..data link swapped), and the target's directory when the file is a
// symbolic link; events about other names, such as an editor's swap, backup
// and probe files (.config.yaml.swp, config.yaml~, 4913), are ignored. Events closer together than the debounce interval
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
	// The names whose events reload: the file; Kubernetes' ..data link,
	// which a ConfigMap update swaps; and, for a symbolic link, its target.
	names := map[string]bool{path: true, filepath.Join(filepath.Dir(path), "..data"): true}
	dirs := []string{filepath.Dir(path)}
	if target, err := filepath.EvalSymlinks(path); err == nil && target != path {
		names[target] = true
		if d := filepath.Dir(target); d != dirs[0] {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return fmt.Errorf("config: watch %s: %w", s.o.file, err)
		}
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
				if !names[filepath.Clean(ev.Name)] || ev.Op == fsnotify.Chmod {
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
// missing or empty file (between the removal and the rename of a save, or
// the truncation and the write) changes nothing; the next event reloads.
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
	if len(bytes.TrimSpace(b)) == 0 {
		// Most likely a writer between truncating and writing; an empty file
		// would also reset every setting to its default, lifting limits.
		s.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "config: file is empty; keeping the configuration as it is",
			slog.String("file", s.o.file))
		return
	}
	s.change("file "+s.o.file, func(l *layers) { l.file = b }) // the same contents change nothing
}
