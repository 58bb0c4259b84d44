package pgtest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(StopAfter(m)) }

// connect connects to dsn and closes the connection on cleanup.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	return conn
}

func TestStart(t *testing.T) {
	conn := connect(t, Start(t))
	var (
		firstDB  string
		leftOpen *pgx.Conn
	)
	t.Run("ended", func(t *testing.T) {
		dsn := Start(t)
		if !strings.HasPrefix(dsn, "postgres://grpckit@127.0.0.1:") || !strings.HasSuffix(dsn, "?sslmode=disable") {
			t.Errorf("dsn = %q, want postgres://grpckit@127.0.0.1:PORT/DB?sslmode=disable", dsn)
		}
		conn := connect(t, dsn)
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&firstDB); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("CREATE TABLE: %v", err)
		}
		// A connection left open must not keep the database from being dropped.
		var err error
		if leftOpen, err = pgx.Connect(t.Context(), dsn); err != nil {
			t.Fatalf("second connection: %v", err)
		}
	})
	if leftOpen != nil {
		leftOpen.Close(t.Context())
	}
	if firstDB == "" {
		t.FailNow()
	}

	var tables int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
		t.Fatalf("count tables: %v", err)
	}
	if tables != 0 {
		t.Errorf("another test's database has %d tables, want none", tables)
	}
	var dropped bool
	if err := conn.QueryRow(t.Context(), "SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = $1)", firstDB).Scan(&dropped); err != nil {
		t.Fatalf("look up database: %v", err)
	}
	if !dropped {
		t.Errorf("database %s of an ended test still exists", firstDB)
	}
	var superuser bool
	if err := conn.QueryRow(t.Context(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&superuser); err != nil || !superuser {
		t.Errorf("the user is a superuser: %v, %v; want true", superuser, err)
	}
}

func TestDBName(t *testing.T) {
	tests := []struct {
		test string
		n    int64
		want string
	}{
		{test: "TestStore", n: 1, want: "t_1_teststore"},
		{test: "TestStore/postgres/Get missing", n: 12, want: "t_12_teststore_postgres_get_missing"},
		{test: "TestÜber", n: 3, want: "t_3_test_ber"},
		{test: strings.Repeat("x", 100), n: 7, want: "t_7_" + strings.Repeat("x", 59)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, dbName(tt.test, tt.n)); diff != "" {
			t.Errorf("dbName(%q, %d) (-want +got):\n%s", tt.test, tt.n, diff)
		}
	}
}
