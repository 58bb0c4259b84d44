package user

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeoutMillis is how long a SQLite connection waits for a lock
// held by another connection or process before failing with SQLITE_BUSY.
const sqliteBusyTimeoutMillis = 5000

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
}

// OpenSQLite opens (creating when missing) the SQLite database file at path
// and its schema, with the pure-Go driver modernc.org/sqlite. Several
// processes on one host may open the same file at once: the database uses
// the WAL journal, a connection waits up to 5s for another's lock, and write
// transactions take the write lock when they begin (BEGIN IMMEDIATE). Files
// on network file systems are not supported, as for any SQLite WAL database.
//
// path is a file name; it must not be empty, ":memory:", a "file:" URI or
// contain '?'. ctx bounds opening and creating the schema only. The caller
// closes the store with [SQLStore.Close].
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("user: sqlite: %q is not a plain file name", path)
	}
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_txlock=immediate", path, sqliteBusyTimeoutMillis)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("user: sqlite: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("user: sqlite: open %s: %w", path, err)
	}
	return newSQLStore(ctx, db, sqliteDialect)
}

// isSQLiteUniqueViolation reports whether err is SQLite's
// SQLITE_CONSTRAINT_UNIQUE.
func isSQLiteUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
