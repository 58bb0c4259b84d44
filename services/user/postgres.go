package user

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

// pgSchema creates the users table. The id column compares bytes (collation
// "C"), as SQLite does, so ids sort the same on both databases whatever the
// database's locale.
const pgSchema = `CREATE TABLE IF NOT EXISTS users (
	id          TEXT COLLATE "C" PRIMARY KEY,
	name        TEXT NOT NULL,
	email       TEXT NOT NULL UNIQUE,
	create_time BIGINT NOT NULL,
	update_time BIGINT NOT NULL
)`

// pgMaxConns caps the connections of one store.
const pgMaxConns = 16

// pgWriteLockKey is the key of the transaction-level advisory lock that
// serializes creating the schema and creating users: "user" in ASCII.
// Advisory locks are per database, so other databases on the server are not
// affected.
const pgWriteLockKey = 0x75736572

var pgDialect = dialect{
	name:      "postgres",
	schema:    []string{pgSchema},
	hasSchema: "SELECT to_regclass('users') IS NOT NULL AND to_regclass('" + dedupe.JournalTable + "') IS NOT NULL",
	// CREATE TABLE IF NOT EXISTS is not safe to run concurrently (the
	// loser may fail with a unique violation in the catalog), and creating
	// users one at a time keeps ids in commit order, as on SQLite.
	lockWrites:        "SELECT pg_advisory_xact_lock(" + strconv.Itoa(pgWriteLockKey) + ")",
	holds:             func(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) },
	isUniqueViolation: isPgUniqueViolation,
	isTransient:       isPgTransient,
	journal:           dedupe.PostgreSQL,
}

// OpenPostgres opens a store on the PostgreSQL database that dsn names, with
// pgx (github.com/jackc/pgx/v5) through database/sql, and creates its schema
// (the users table) when missing. dsn is a URL
// (postgres://user:password@host:5432/db?sslmode=disable) or a key=value
// string, as [pgx.ParseConfig] reads it; errors mask its password.
//
// The role needs SELECT, INSERT, UPDATE and DELETE on the users table and
// on the dedupe journal's table grpckit_dedupe (see [SQLStore]), and CREATE
// on the schema only when a table does not exist yet. A store opens
// at most 16 connections.
//
// Several processes, on any hosts, may use the database at once: schema
// creation and user creation take a transaction-level advisory lock, so
// users are created one at a time and, from one host, committed in id order.
// PostgreSQL text cannot hold NUL characters or invalid UTF-8: [Server]
// rejects such names and emails, and ids that hold them are not found.
//
// ctx bounds connecting and creating the schema only. The caller closes the
// store with [SQLStore.Close].
func OpenPostgres(ctx context.Context, dsn string) (*SQLStore, error) {
	if dsn == "" {
		return nil, errors.New("user: postgres: empty DSN")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("user: postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	// Bounded, so that a burst of calls queues here rather than exhausting
	// the server's connections (max_connections is 100 by default, shared by
	// every instance).
	db.SetMaxOpenConns(pgMaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("user: postgres: connect: %w", err) // err names the server, database and user
	}
	if err := createSchema(ctx, db, pgDialect); err != nil {
		db.Close()
		return nil, err
	}
	return newSQLStore(db, pgDialect), nil
}

// isPgUniqueViolation reports whether err is PostgreSQL's unique_violation
// (SQLSTATE 23505) on the email column's constraint (the only unique one
// besides the primary key, whose values are fresh UUIDs).
func isPgUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505" && e.ConstraintName != "users_pkey"
}

// isPgTransient reports whether err is a passing failure: the connection
// could not be made or was lost (SQLSTATE class 08, a connect error, a
// broken connection), the server is shutting down or out of connections
// (57P01-57P03, 53300), or the transaction lost a serialization race or a
// deadlock (40001, 40P01).
func isPgTransient(err error) bool {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		switch e.Code {
		case "57P01", "57P02", "57P03", "53300", "40001", "40P01":
			return true
		}
		return strings.HasPrefix(e.Code, "08")
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded)
}
