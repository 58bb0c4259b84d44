package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/grpckit/grpckit/internal/writeload"
	"github.com/grpckit/grpckit/kit"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

// The write workload of the kill-9 and rolling-restart scenarios: writers
// that create and rename users through consul:///user with request ids
// (kit.WithDedupedMethods) and kit's retries, checked against the SQLite
// file afterwards.
const (
	writers      = 2
	writeRate    = 40 // calls a second, all writers together
	writeTimeout = 2 * time.Second
)

// writes is a running write workload and its client.
type writes struct {
	c        *clients
	load     *writeload.Load
	start    time.Time
	stopOnce sync.Once
}

// stop stops the writers and closes their client. Safe to call more than
// once.
func (w *writes) stop() {
	w.stopOnce.Do(func() {
		w.load.Stop()
		w.c.close()
	})
}

// startWrites dials a user client that stamps CreateUser and UpdateUser
// with request ids and starts the writers.
func (e *env) startWrites(ctx context.Context, scenario string) (*writes, error) {
	c, err := e.dial(greeterTarget, kit.WithDedupedMethods(writeload.Methods...))
	if err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("%s-%d", scenario, time.Now().UnixNano())
	return &writes{c: c, start: time.Now(), load: writeload.Start(ctx, userv1.NewUserServiceClient(c.userCC), prefix, writers, writeRate, writeTimeout)}, nil
}

// check stops the writers, reads every user from the SQLite file, and adds
// the figures to r: writes accepted, failed, lost and duplicated, and the
// attempts of writes that failed (retried with the same request id); a lost or
// duplicated write misses the target.
func (w *writes) check(ctx context.Context, e *env, r *result) {
	w.stop()
	store, err := user.OpenSQLite(ctx, e.db)
	if err != nil {
		r.err = fmt.Errorf("open the store to check the writes: %w", err)
		return
	}
	defer store.Close()
	users, err := writeload.ReadUsers(ctx, store)
	if err != nil {
		r.err = fmt.Errorf("read the store to check the writes: %w", err)
		return
	}
	rep := w.load.Check(users)
	r.add("writes accepted", "%d", rep.Accepted)
	r.add("writes failed (outcome unknown)", "%d", rep.Failed)
	r.add("write attempts failed (retried or not)", "%d", w.c.obs.failedSince(w.start))
	r.add("writes lost", "%d", rep.Lost)
	r.add("writes duplicated", "%d", rep.Duplicated)
	if len(rep.Problems) > 0 {
		progress("%s: writes:\n      %s", r.name, strings.Join(rep.Problems, "\n      "))
	}
	r.check(rep.Lost == 0, "%d accepted writes lost", rep.Lost)
	r.check(rep.Duplicated == 0, "%d writes duplicated", rep.Duplicated)
	r.check(rep.Accepted > 0, "no write accepted")
}
