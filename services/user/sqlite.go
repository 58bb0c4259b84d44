package user

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

// sqliteBusyTimeout is how long a SQLite connection waits for a lock held by
// another connection or process before failing with SQLITE_BUSY, and how long
// [OpenSQLite] retries setting the database up while another process does.
const sqliteBusyTimeout = 5 * time.Second

// sqliteSchema creates the users table. IF NOT EXISTS makes it idempotent,
// and SQLite's locking (with the busy timeout) serializes processes that
// start at once.
const sqliteSchema = `CREATE TABLE IF NOT EXISTS users (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	email       TEXT NOT NULL UNIQUE,
	create_time INTEGER NOT NULL,
	update_time INTEGER NOT NULL
) STRICT`

var sqliteDialect = dialect{
	name:              "sqlite",
	schema:            []string{sqliteSchema},
	isUniqueViolation: isSQLiteUniqueViolation,
	journal:           dedupe.SQLite,
}

// OpenSQLite opens (creating when missing) the SQLite database file at path
// and its schema, with the pure-Go driver modernc.org/sqlite. Several
// processes on one host may open and use the same file at once: the database
// uses the WAL journal, a connection waits up to 5s for another's lock, and
// write transactions take the write lock when they begin (BEGIN IMMEDIATE).
// Files on network file systems are not supported, as for any SQLite WAL
// database.
//
// path is a file name; it must not be empty, ":memory:", a "file:" URI or
// contain '?'. ctx bounds opening and creating the schema only. The caller
// closes the store with [SQLStore.Close].
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("user: sqlite: %q is not a plain file name", path)
	}
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_txlock=immediate", path, sqliteBusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("user: sqlite: open %s: %w", path, err)
	}
	if err := retryBusy(ctx, sqliteBusyTimeout, func() error { return setUpSQLite(ctx, db) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("user: sqlite: open %s: %w", path, err)
	}
	return newSQLStore(db, sqliteDialect), nil
}

// setUpSQLite switches db to the WAL journal, which SQLite keeps in the file
// for every later connection, and creates the schema.
func setUpSQLite(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set WAL journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("set WAL journal mode: journal mode is still %q", mode)
	}
	return createSchema(ctx, db, sqliteDialect)
}

// retryBusy calls f until it returns something other than SQLITE_BUSY, ctx
// is done or timeout has passed, backing off between calls. Switching a new
// file to WAL fails with SQLITE_BUSY at once, without waiting for the busy
// timeout, while another process opens it.
func retryBusy(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	backoff := 5 * time.Millisecond
	for {
		err := f()
		if err == nil || !isSQLiteBusy(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// isSQLiteBusy reports whether err is SQLITE_BUSY or one of its extended codes.
func isSQLiteBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isSQLiteUniqueViolation reports whether err is SQLite's
// SQLITE_CONSTRAINT_UNIQUE.
func isSQLiteUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
