package user

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grpckit/grpckit/internal/pgtest"
)

// TestPostgresConcurrentSameEmail races stores on one database, as several
// instances of the service would, to take one email.
func TestPostgresConcurrentSameEmail(t *testing.T) {
	ctx := t.Context()
	ss := openStores(t, postgresBackend.newDB(t), 2)
	const perStore = 10
	str := func(s string) *string { return &s }

	// race calls f perStore times concurrently on each store and returns
	// how many calls returned each error.
	race := func(f func(s *SQLStore, i int) error) map[error]int {
		errs := make(chan error, len(ss)*perStore)
		var wg sync.WaitGroup
		for _, s := range ss {
			for i := range perStore {
				wg.Go(func() { errs <- f(s, i) })
			}
		}
		wg.Wait()
		close(errs)
		got := make(map[error]int)
		for err := range errs {
			got[err]++
		}
		return got
	}
	want := map[error]int{nil: 1, ErrEmailTaken: len(ss)*perStore - 1}
	cmpErrs := cmp.Comparer(func(a, b error) bool { return a == b })

	t.Run("Create", func(t *testing.T) {
		got := race(func(s *SQLStore, i int) error {
			_, err := s.Create(ctx, fmt.Sprint("Same ", i), "same@example.com")
			return err
		})
		if diff := cmp.Diff(want, got, cmpErrs); diff != "" {
			t.Errorf("Create errors (-want +got):\n%s", diff)
		}
	})
	t.Run("Update", func(t *testing.T) {
		ids := make([]string, len(ss)*perStore)
		for i := range ids {
			u, err := ss[0].Create(ctx, "U", fmt.Sprintf("u%d@example.com", i))
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			ids[i] = u.ID
		}
		next := make(chan string, len(ids))
		for _, id := range ids {
			next <- id
		}
		got := race(func(s *SQLStore, _ int) error {
			_, err := s.Update(ctx, <-next, Patch{Email: str("taken@example.com")})
			return err
		})
		if diff := cmp.Diff(want, got, cmpErrs); diff != "" {
			t.Errorf("Update errors (-want +got):\n%s", diff)
		}
	})

	users, err := ss[1].List(ctx, 100, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	emails := make(map[string]int)
	for _, u := range users {
		emails[u.Email]++
	}
	if emails["same@example.com"] != 1 || emails["taken@example.com"] != 1 {
		t.Errorf("users by email = %v, want one each of same@ and taken@example.com", emails)
	}
}

// TestPostgresConcurrentSchema opens many stores on a new database at once,
// as instances of the service starting together would: all must create or
// find the schema.
func TestPostgresConcurrentSchema(t *testing.T) {
	ctx := t.Context()
	ss := openStores(t, postgresBackend.newDB(t), 8)
	u, err := ss[0].Create(ctx, "Alice", "alice@example.com")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for i, s := range ss {
		got, err := s.Get(ctx, u.ID)
		if err != nil {
			t.Fatalf("store %d: Get: %v", i, err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("store %d: Get (-want +got):\n%s", i, diff)
		}
	}

	// ids sort by bytes, as on SQLite, whatever the database's locale.
	var collation string
	err = ss[0].db.QueryRowContext(ctx, `SELECT collation_name FROM information_schema.columns
		WHERE table_name = 'users' AND column_name = 'id'`).Scan(&collation)
	if err != nil || collation != "C" {
		t.Errorf("collation of users.id = %q, %v; want C", collation, err)
	}
}

func TestOpenPostgresBadDSN(t *testing.T) {
	// A database that does not exist on a running server.
	u, err := url.Parse(pgtest.Start(t))
	if err != nil {
		t.Fatalf("parse pgtest DSN: %v", err)
	}
	u.Path = "/no_such_db"
	u.User = url.UserPassword(u.User.Username(), "hunter2")

	tests := []struct {
		name string
		dsn  string
		want string // a substring of the error
	}{
		{name: "empty", dsn: "", want: "empty DSN"},
		{name: "not a DSN", dsn: "users.db", want: "cannot parse"},
		{name: "bad port", dsn: "postgres://u:hunter2@127.0.0.1:port/db", want: "cannot parse"},
		{name: "bad option", dsn: "postgres://u:hunter2@127.0.0.1/db?sslmode=sometimes", want: "sslmode"},
		{name: "nothing listening", dsn: "host=127.0.0.1 port=1 user=u password=hunter2 dbname=db sslmode=disable connect_timeout=5", want: "connect"},
		{name: "no such database", dsn: u.String(), want: `database "no_such_db" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenPostgres(t.Context(), tt.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("OpenPostgres(%q) succeeded, want an error", tt.dsn)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "user: postgres: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("OpenPostgres(%q) = %q, want an error starting with %q containing %q", tt.dsn, msg, "user: postgres: ", tt.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("OpenPostgres(%q) = %q, which shows the password", tt.dsn, msg)
			}
		})
	}
}

// TestPostgresLeastPrivilege: a role with only SELECT, INSERT, UPDATE and
// DELETE on an existing users table, and no CREATE on the schema, can open
// the store and use it.
func TestPostgresLeastPrivilege(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Start(t)
	owner := openStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) })
	for _, stmt := range []string{
		`CREATE ROLE app LOGIN`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`GRANT USAGE ON SCHEMA public TO app`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON users, grpckit_dedupe TO app`,
	} {
		if _, err := owner.db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("app")
	app := openStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, u.String()) })
	created, err := app.Create(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatalf("Create as app: %v", err)
	}
	if _, err := app.Get(ctx, created.ID); err != nil {
		t.Errorf("Get as app: %v", err)
	}
}

func TestIsPgTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "08006"}, true},  // connection failure
		{&pgconn.PgError{Code: "57P01"}, true},  // admin shutdown
		{&pgconn.PgError{Code: "53300"}, true},  // too many connections
		{&pgconn.PgError{Code: "40001"}, true},  // serialization failure
		{&pgconn.PgError{Code: "40P01"}, true},  // deadlock
		{&pgconn.PgError{Code: "23505"}, false}, // unique violation
		{&pgconn.PgError{Code: "42P01"}, false}, // undefined table
		{fmt.Errorf("wrapped: %w", driver.ErrBadConn), true},
		{errors.New("boom"), false},
	} {
		if got := isPgTransient(tc.err); got != tc.want {
			t.Errorf("isPgTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !isPgUniqueViolation(&pgconn.PgError{Code: "23505", ConstraintName: "users_email_key"}) ||
		isPgUniqueViolation(&pgconn.PgError{Code: "23505", ConstraintName: "users_pkey"}) {
		t.Error("isPgUniqueViolation: only the email's constraint means the email is taken")
	}
}
