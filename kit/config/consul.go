package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/internal/consulq"
)

// startConsul reads the KV document once, folding it into the start
// snapshot when it is valid, and starts watching it. An unreachable Consul
// is logged and the watch keeps trying; Consul's ACLs refusing the read
// (a wrong token, or one without key:read) fail the start.
func (s *Store[T]) startConsul(ctx context.Context) error {
	c, err := s.consulClient()
	if err != nil || c == nil {
		return err
	}
	s.kv = c
	qctx, cancel := context.WithTimeout(ctx, s.o.answerTimeout)
	pair, meta, err := c.KV().Get(s.o.kvKey, (&api.QueryOptions{}).WithContext(qctx))
	cancel()
	if err = consulq.ACL(err, s.need()); errors.Is(err, consulq.ErrACLRefused) {
		return fmt.Errorf("config: read consul key %s: %w", s.o.kvKey, err)
	}
	w := kvWatch[T]{s: s, bo: consulq.Backoff{Base: s.o.backoffBase, Max: s.o.backoffMax}}
	if err != nil {
		w.failed(ctx, err)
	} else {
		w.index = consulq.NextIndex(0, meta.LastIndex)
		s.startKV(value(pair))
	}
	s.done.Add(1)
	go w.run(ctx)
	return nil
}

// startKV makes the start snapshot include the KV document when the
// result is valid; otherwise the document is refused like a later change
// and stays pending.
func (s *Store[T]) startKV(doc []byte) {
	if doc == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest.kv = doc
	next := s.accepted
	next.kv = doc
	v, err := s.build(next)
	if err != nil {
		s.rejected++
		s.lastErr, s.lastErrT = fmt.Errorf("document of consul %s refused at start: %w", s.o.kvKey, err), time.Now()
		s.o.logger.LogAttrs(context.Background(), slog.LevelError, "config: Consul document refused at start; starting without it",
			slog.String("service", s.name), slog.String("key", s.o.kvKey), slog.Any("error", err))
		return
	}
	s.accepted = next
	cur := s.cur.Load()
	s.cur.Store(&Snapshot[T]{Value: v, Version: cur.Version, Source: cur.Source, Time: time.Now()})
}

// need names the right the KV source takes.
func (s *Store[T]) need() string { return fmt.Sprintf("key:read on %q", s.o.kvKey) }

// value is the document of pair; nil when the key does not exist.
func value(pair *api.KVPair) []byte {
	if pair == nil {
		return nil
	}
	if pair.Value == nil {
		return []byte{}
	}
	return pair.Value
}

// kvWatch follows the Consul key with blocking queries (the rules of
// internal/consulq). Its fields belong to the run goroutine.
type kvWatch[T any] struct {
	s       *Store[T]
	index   uint64
	pause   time.Duration
	bo      consulq.Backoff
	failing bool
}

// applyKV makes doc the KV layer's input; nil removes it (the key was
// deleted). The same document again (the wait time passed) changes nothing.
func (s *Store[T]) applyKV(doc []byte) {
	s.change("consul "+s.o.kvKey, func(l *layers) { l.kv = doc })
}

func (w *kvWatch[T]) run(ctx context.Context) {
	defer w.s.done.Done()
	o := &w.s.o
	for {
		if consulq.Sleep(ctx, w.pause) != nil {
			return
		}
		start := time.Now()
		q := &api.QueryOptions{WaitIndex: w.index, WaitTime: o.waitTime}
		qctx, cancel := context.WithTimeout(ctx, consulq.QueryTimeout(w.index != 0, o.waitTime, o.answerTimeout))
		pair, meta, err := w.s.kv.KV().Get(o.kvKey, q.WithContext(qctx))
		cancel()
		err = consulq.ACL(err, w.s.need())
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.failed(ctx, err)
			continue
		}
		if w.failing {
			o.logger.LogAttrs(ctx, slog.LevelInfo, "config: Consul KV watch recovered", slog.String("key", o.kvKey))
		}
		w.failing = false
		w.bo.Reset()
		w.index = consulq.NextIndex(w.index, meta.LastIndex)
		w.pause = o.minInterval - time.Since(start)
		w.s.applyKV(value(pair)) // nothing happens when the document is the one known

	}
}

// failed schedules a retry after a failed query, logging the first failure
// of a series.
func (w *kvWatch[T]) failed(ctx context.Context, err error) {
	o := &w.s.o
	w.pause = w.bo.Next()
	w.index = consulq.IndexAfterError
	if !w.failing {
		w.failing = true
		level, msg := slog.LevelWarn, "config: Consul KV unreachable; keeping the configuration as it is"
		if errors.Is(err, consulq.ErrACLRefused) {
			level, msg = slog.LevelError, "config: Consul refuses the token; keeping the configuration as it is"
		}
		o.logger.LogAttrs(ctx, level, msg, slog.String("key", o.kvKey), slog.Any("error", err))
	}
}
