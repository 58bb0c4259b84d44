package user

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/internal/pgtest"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.StopAfter(m))
}

// opener opens a store on one database; every call opens another store.
type opener func(context.Context) (*SQLStore, error)

// backend is a kind of database that a [SQLStore] runs on.
type backend struct {
	name string
	// newDB makes a new empty database for t.
	newDB func(t testing.TB) opener
}

var (
	sqliteBackend = backend{name: "sqlite", newDB: func(t testing.TB) opener {
		path := filepath.Join(t.TempDir(), "users.db")
		return func(ctx context.Context) (*SQLStore, error) { return OpenSQLite(ctx, path) }
	}}
	// postgresBackend skips under -short (see [pgtest.Start]).
	postgresBackend = backend{name: "postgres", newDB: func(t testing.TB) opener {
		dsn := pgtest.Start(t)
		return func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) }
	}}
	backends = []backend{sqliteBackend, postgresBackend}
)

// forEachBackend runs f in a subtest for each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// newStore opens a store on a new database of b and closes it on cleanup.
func (b backend) newStore(t testing.TB) *SQLStore {
	t.Helper()
	return openStore(t, b.newDB(t))
}

// openStore opens a store with open and closes it on cleanup.
func openStore(t testing.TB, open opener) *SQLStore {
	t.Helper()
	s, err := open(t.Context())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newTestStore opens a SQLite store on a new file in t.TempDir and closes it
// on cleanup.
func newTestStore(t testing.TB) *SQLStore {
	t.Helper()
	return sqliteBackend.newStore(t)
}

// startServer serves a [Server] on store over bufconn and returns a client;
// both stop on cleanup.
func startServer(t *testing.T, store Store, opts ...Option) userv1.UserServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	userv1.RegisterUserServiceServer(gs, NewServer(store, opts...))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		// Stop before Serve began makes Serve return ErrServerStopped.
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return userv1.NewUserServiceClient(conn)
}

// badRequestFields returns the field names of err's BadRequest detail, in order.
func badRequestFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

// fakeStore is a [Store] that returns err from every method, reports List
// calls on lists and otherwise serves users.
type fakeStore struct {
	err   error
	users []User
	lists chan listCall // buffered by the test
}

type listCall struct {
	pageSize int
	afterID  string
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) Create(ctx context.Context, name, email string) (User, error) {
	return User{Name: name, Email: email}, f.err
}

func (f *fakeStore) Get(ctx context.Context, id string) (User, error) { return User{ID: id}, f.err }

func (f *fakeStore) List(ctx context.Context, pageSize int, afterID string) ([]User, error) {
	if f.lists != nil {
		f.lists <- listCall{pageSize, afterID}
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.users[:min(pageSize, len(f.users))], nil
}

func (f *fakeStore) Update(ctx context.Context, id string, p Patch) (User, error) {
	return User{ID: id}, f.err
}

func (f *fakeStore) Delete(ctx context.Context, id string) error { return f.err }

func (f *fakeStore) Close() error { return nil }

// recordHandler is a slog.Handler that sends every record on records.
type recordHandler struct{ records chan slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.records <- r.Clone()
	return nil
}

func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h recordHandler) WithGroup(string) slog.Handler { return h }

// attrs returns r's attributes by key.
func attrs(r slog.Record) map[string]slog.Value {
	m := make(map[string]slog.Value)
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value
		return true
	})
	return m
}

// sortedKeys returns m's keys in order; a helper for readable diffs.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var errBoom = errors.New(`near "SELEC": syntax error in SELEC id FROM users`)
