package user

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
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
	// placeholder returns the n-th (1-based) bind parameter: "?" for SQLite,
	// "$1", "$2"... for Postgres.
	placeholder func(n int) string
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
}

// canHold reports whether the database can store s.
func (d dialect) canHold(s string) bool { return d.holds == nil || d.holds(s) }

// rebind replaces the "?" markers of query with d's placeholders. The
// package's SQL has no "?" inside literals.
func (d dialect) rebind(query string) string {
	if d.placeholder == nil {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteString(d.placeholder(n))
	}
	return b.String()
}

// SQLStore is a [Store] on a database/sql database. It is safe for concurrent
// use. Open one with [OpenSQLite] or [OpenPostgres].
type SQLStore struct {
	db      *sql.DB
	dialect dialect
	creates chan struct{} // a token: one Create of this process at a time waits for the database's write lock
	insert  string
	get     string
	list    string
	update  string
	delete  string
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
	for _, stmt := range d.schema {
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
	return &SQLStore{
		db:      db,
		dialect: d,
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
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, s.wrap("create", err)
	}
	now := storeTime(time.Now())
	u := User{ID: id.String(), Name: name, Email: email, CreateTime: now, UpdateTime: now}
	if _, err := tx.ExecContext(ctx, s.insert, u.ID, u.Name, u.Email, now.UnixMicro(), now.UnixMicro()); err != nil {
		return User{}, s.wrap("create", err)
	}
	if err := tx.Commit(); err != nil {
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
	now := storeTime(time.Now()).UnixMicro()
	u, err := scanUser(s.db.QueryRowContext(ctx, s.update, nullString(p.Name), nullString(p.Email), now, id))
	if err != nil {
		return User{}, s.wrap("update", err)
	}
	return u, nil
}

// Delete implements [Store.Delete].
func (s *SQLStore) Delete(ctx context.Context, id string) error {
	if !s.dialect.canHold(id) {
		return ErrNotFound
	}
	res, err := s.db.ExecContext(ctx, s.delete, id)
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
	return nil
}

// Close implements [Store.Close]; it closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

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

// storeTime is t as the store keeps it: UTC, whole microseconds, no
// monotonic reading.
func storeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullString(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}
