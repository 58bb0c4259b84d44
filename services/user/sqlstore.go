package user

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// The SQL of every [SQLStore], written once with "?" bind markers that
// [dialect.rebind] turns into the dialect's placeholders. Times are stored as
// integer microseconds since the Unix epoch (UTC), which every SQL database
// keeps exactly.
const (
	userColumns = `id, name, email, create_time, update_time`
	sqlInsert   = `INSERT INTO users (` + userColumns + `) VALUES (?, ?, ?, ?, ?)`
	sqlGet      = `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	sqlList     = `SELECT ` + userColumns + ` FROM users WHERE id > ? ORDER BY id LIMIT ?`
	sqlUpdate   = `UPDATE users SET name = COALESCE(?, name), email = COALESCE(?, email), update_time = ?` +
		` WHERE id = ? RETURNING ` + userColumns
	sqlDelete = `DELETE FROM users WHERE id = ?`
)

// dialect is what differs between the SQL databases a [SQLStore] runs on.
type dialect struct {
	// name prefixes errors, e.g. "sqlite".
	name string
	// schema holds statements that create the schema when it is missing.
	// They run in one write transaction (see lockWrites) and must be
	// idempotent.
	schema []string
	// hasSchema, when not empty, is a query answering whether the schema
	// exists; when it does, createSchema runs none of the schema statements,
	// so a role with no CREATE privilege can open an existing database.
	hasSchema string
	// lockWrites, when not empty, is run first in the transactions that
	// create the schema or a user. It takes a lock that serializes them
	// across every process using the database, as SQLite's BEGIN IMMEDIATE
	// does by itself.
	lockWrites string
	// holds reports whether the database can store s; nil means any string
	// (PostgreSQL text holds neither NUL nor invalid UTF-8).
	holds func(s string) bool
	// isUniqueViolation reports whether err is a UNIQUE constraint violation
	// (the email column's: it is the only unique one besides the primary key).
	isUniqueViolation func(err error) bool
	// isTransient reports whether err is a passing failure of the database
	// (see ErrUnavailable); nil means none is recognised.
	isTransient func(err error) bool
	// journal is the database's dialect for the dedupe journal, whose
	// schema createSchema creates with the users table; its bind
	// parameters are the store's too (rebind).
	journal dedupe.Dialect
}

// newJournal returns d's dedupe journal.
func (d dialect) newJournal() *dedupe.Journal {
	j, err := dedupe.NewJournal(d.journal)
	if err != nil {
		panic(fmt.Sprintf("user: %s: %v", d.name, err)) // a dialect without journal dialect is a bug here
	}
	return j
}

// canHold reports whether the database can store s.
func (d dialect) canHold(s string) bool { return d.holds == nil || d.holds(s) }

// rebind replaces the "?" markers of query with d's placeholders (those of
// its journal's dialect). The package's SQL has no "?" inside literals.
func (d dialect) rebind(query string) string { return d.journal.Rebind(query) }

// JournalRetention is how long a [SQLStore] keeps the record of a
// deduplicated write: a retry of the call within that time (from its first
// attempt) gets the first result; after it, the call would run again.
// Records older than that are pruned at most every [journalPruneEvery] by
// each process, after one of its writes.
const JournalRetention = 24 * time.Hour

// journalPruneEvery is how often a process prunes the journal at most.
const journalPruneEvery = 10 * time.Minute

// SQLStore is a [Store] on a database/sql database. It is safe for concurrent
// use. Open one with [OpenSQLite] or [OpenPostgres].
//
// Create, Update and Delete are exactly-once for deduplicated calls: when
// their ctx carries the call's [dedupe.Request] ([dedupe.FromContext]: the
// client stamped a request id and the server's dedupe interceptor read it),
// the write's transaction also records the call (caller, method, request
// id, request hash) and its result in the [dedupe.Journal] table
// grpckit_dedupe of the same database. A repeat of the call, on any
// instance sharing the database, returns the recorded result — the same
// user, with the same id and times; nothing for Delete — without writing;
// a duplicate that arrives while the first is still in its transaction
// waits for it. A request id recorded for a different request fails with
// [dedupe.ErrRequestIDReused]. Failed calls are not recorded (their
// transaction rolls back, so they changed nothing): a retry runs again and
// may get another answer. Records are kept for [JournalRetention].
type SQLStore struct {
	db      *sql.DB
	dialect dialect
	journal *dedupe.Journal
	creates chan struct{} // a token: one Create of this process at a time waits for the database's write lock
	insert  string
	get     string
	list    string
	update  string
	delete  string

	// Pruning the journal, in the background after a write.
	now       func() time.Time // time.Now; tests replace it before use
	nextPrune atomic.Int64     // Unix nanoseconds; the first write after it prunes
	closing   context.Context  // canceled by Close
	close     context.CancelFunc
	pruneMu   sync.Mutex // orders starting a prune against Close's Wait
	pruning   sync.WaitGroup
}

var _ Store = (*SQLStore)(nil)

// beginWrite begins a transaction on db that holds d's write lock.
func beginWrite(ctx context.Context, db *sql.DB, d dialect) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil || d.lockWrites == "" {
		return tx, err
	}
	if _, err := tx.ExecContext(ctx, d.lockWrites); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// createSchema runs d's schema statements on db in one write transaction,
// so processes that start at once create the schema one after the other.
func createSchema(ctx context.Context, db *sql.DB, d dialect) error {
	tx, err := beginWrite(ctx, db, d)
	if err != nil {
		return fmt.Errorf("user: %s: create schema: %w", d.name, err)
	}
	defer tx.Rollback() // a no-op after Commit
	if d.hasSchema != "" {
		var exists bool
		if err := tx.QueryRowContext(ctx, d.hasSchema).Scan(&exists); err != nil {
			return fmt.Errorf("user: %s: create schema: %w", d.name, err)
		}
		if exists {
			return nil
		}
	}
	for _, stmt := range append(slices.Clone(d.schema), d.newJournal().Schema()...) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("user: %s: create schema: %w", d.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("user: %s: create schema: %w", d.name, err)
	}
	return nil
}

// newSQLStore returns a store on db, which has the schema of d and which the
// store owns from then on.
func newSQLStore(db *sql.DB, d dialect) *SQLStore {
	closing, cancel := context.WithCancel(context.Background())
	return &SQLStore{
		db:      db,
		dialect: d,
		journal: d.newJournal(),
		now:     time.Now,
		closing: closing,
		close:   cancel,
		creates: make(chan struct{}, 1),
		insert:  d.rebind(sqlInsert),
		get:     d.rebind(sqlGet),
		list:    d.rebind(sqlList),
		update:  d.rebind(sqlUpdate),
		delete:  d.rebind(sqlDelete),
	}
}

// Create implements [Store.Create]. The id and times are taken inside the
// write transaction, which excludes every other Create on the database, so
// on one host ids are committed in increasing order.
func (s *SQLStore) Create(ctx context.Context, name, email string) (User, error) {
	// Creates are serialized by the database anyway; queueing them here
	// first keeps a burst from holding one pooled connection per waiter.
	select {
	case s.creates <- struct{}{}:
	case <-ctx.Done():
		return User{}, s.wrap("create", ctx.Err())
	}
	defer func() { <-s.creates }()
	tx, err := beginWrite(ctx, s.db, s.dialect)
	if err != nil {
		return User{}, s.wrap("create", err)
	}
	defer tx.Rollback() // a no-op after Commit
	first, done, err := s.claim(ctx, tx)
	if err != nil {
		return User{}, s.wrap("create", err)
	}
	if done {
		return first, nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, s.wrap("create", err)
	}
	now := storeTime(time.Now())
	u := User{ID: id.String(), Name: name, Email: email, CreateTime: now, UpdateTime: now}
	if _, err := tx.ExecContext(ctx, s.insert, u.ID, u.Name, u.Email, now.UnixMicro(), now.UnixMicro()); err != nil {
		return User{}, s.wrap("create", err)
	}
	if err := s.commit(ctx, tx, &u); err != nil {
		return User{}, s.wrap("create", err)
	}
	return u, nil
}

// Get implements [Store.Get].
func (s *SQLStore) Get(ctx context.Context, id string) (User, error) {
	if !s.dialect.canHold(id) {
		return User{}, ErrNotFound
	}
	u, err := scanUser(s.db.QueryRowContext(ctx, s.get, id))
	if err != nil {
		return User{}, s.wrap("get", err)
	}
	return u, nil
}

// List implements [Store.List].
func (s *SQLStore) List(ctx context.Context, pageSize int, afterID string) ([]User, error) {
	if pageSize < 1 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.list, afterID, pageSize)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	defer rows.Close()
	users := make([]User, 0, min(pageSize, 64))
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap("list", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list", err)
	}
	return users, nil
}

// Update implements [Store.Update].
func (s *SQLStore) Update(ctx context.Context, id string, p Patch) (User, error) {
	if p.Name == nil && p.Email == nil {
		return s.Get(ctx, id)
	}
	if !s.dialect.canHold(id) {
		return User{}, ErrNotFound
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return User{}, s.wrap("update", err)
	}
	defer tx.Rollback() // a no-op after Commit
	first, done, err := s.claim(ctx, tx)
	if err != nil {
		return User{}, s.wrap("update", err)
	}
	if done {
		return first, nil
	}
	now := storeTime(time.Now()).UnixMicro()
	u, err := scanUser(tx.QueryRowContext(ctx, s.update, nullString(p.Name), nullString(p.Email), now, id))
	if err != nil {
		return User{}, s.wrap("update", err)
	}
	if err := s.commit(ctx, tx, &u); err != nil {
		return User{}, s.wrap("update", err)
	}
	return u, nil
}

// Delete implements [Store.Delete].
func (s *SQLStore) Delete(ctx context.Context, id string) error {
	if !s.dialect.canHold(id) {
		return ErrNotFound
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("delete", err)
	}
	defer tx.Rollback() // a no-op after Commit
	if _, done, err := s.claim(ctx, tx); err != nil {
		return s.wrap("delete", err)
	} else if done {
		return nil
	}
	res, err := tx.ExecContext(ctx, s.delete, id)
	if err != nil {
		return s.wrap("delete", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap("delete", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	if err := s.commit(ctx, tx, nil); err != nil {
		return s.wrap("delete", err)
	}
	return nil
}

// claim starts the deduplicated call of ctx, if any, in the write
// transaction tx (see [SQLStore]). done reports that the call was done
// before: first is its recorded user (zero for Delete), and the caller
// returns it without writing.
func (s *SQLStore) claim(ctx context.Context, tx *sql.Tx) (first User, done bool, err error) {
	r, ok := dedupe.FromContext(ctx)
	if !ok {
		return User{}, false, nil
	}
	var recorded userv1.User
	claimed, err := s.journal.Claim(ctx, tx, r, &recorded)
	if err != nil || claimed {
		return User{}, false, err
	}
	if recorded.GetId() != "" {
		first = fromProto(&recorded)
	}
	return first, true, nil
}

// commit records u (nil for Delete) as the result of the deduplicated call
// of ctx, if any, and commits tx; then it prunes the journal when that is
// due.
func (s *SQLStore) commit(ctx context.Context, tx *sql.Tx, u *User) error {
	if r, ok := dedupe.FromContext(ctx); ok {
		var resp userv1.User
		if u != nil {
			resp = *toProto(*u)
		}
		if err := s.journal.Record(ctx, tx, r, &resp); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.maybePrune()
	return nil
}

// maybePrune starts pruning the journal in the background when this
// process has not done it for journalPruneEvery.
func (s *SQLStore) maybePrune() {
	now := s.now()
	next := s.nextPrune.Load()
	if now.UnixNano() < next || !s.nextPrune.CompareAndSwap(next, now.Add(journalPruneEvery).UnixNano()) {
		return
	}
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if s.closing.Err() != nil {
		return // closed: a write that outlived the server prunes nothing
	}
	s.pruning.Go(func() {
		ctx, cancel := context.WithTimeout(s.closing, time.Minute)
		defer cancel()
		s.journal.Prune(ctx, s.db, now.Add(-JournalRetention)) // an error leaves the records to the next run
	})
}

// Close implements [Store.Close]; it stops pruning the journal and closes
// the database.
func (s *SQLStore) Close() error {
	s.pruneMu.Lock()
	s.close()
	s.pruneMu.Unlock()
	s.pruning.Wait()
	return s.db.Close()
}

// wrap turns a database error into [ErrNotFound], [ErrEmailTaken] or an
// error that names the operation and wraps err.
func (s *SQLStore) wrap(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case s.dialect.isUniqueViolation(err):
		return ErrEmailTaken
	case s.dialect.isTransient != nil && s.dialect.isTransient(err):
		return fmt.Errorf("user: %s: %s: %w: %w", s.dialect.name, op, ErrUnavailable, err)
	}
	return fmt.Errorf("user: %s: %s: %w", s.dialect.name, op, err)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner) (User, error) {
	var (
		u                User
		created, updated int64
	)
	if err := r.Scan(&u.ID, &u.Name, &u.Email, &created, &updated); err != nil {
		return User{}, err
	}
	u.CreateTime = time.UnixMicro(created).UTC()
	u.UpdateTime = time.UnixMicro(updated).UTC()
	return u, nil
}

// fromProto is the inverse of toProto.
func fromProto(u *userv1.User) User {
	return User{
		ID:         u.GetId(),
		Name:       u.GetName(),
		Email:      u.GetEmail(),
		CreateTime: u.GetCreateTime().AsTime(),
		UpdateTime: u.GetUpdateTime().AsTime(),
	}
}

// storeTime is t as the store keeps it: UTC, whole microseconds, no
// monotonic reading.
func storeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullString(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}
