package writeload

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs the workload against a user server on a new SQLite store until
// it has made n creates, with the client interceptors given, and returns
// the load (stopped) and every stored user.
func run(t *testing.T, n int, interceptors ...grpc.UnaryClientInterceptor) (*Load, []user.User) {
	t.Helper()
	store, err := user.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	userv1.RegisterUserServiceServer(srv, user.NewServer(store))
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///users",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(interceptors...))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	l := Start(t.Context(), userv1.NewUserServiceClient(conn), "test", 2, 1000, 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for l.creations() < n {
		if time.Now().After(deadline) {
			l.Stop()
			t.Fatalf("fewer than %d creates within 10s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.Stop()
	users, err := ReadUsers(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	return l, users
}

// creations returns the number of CreateUser calls made.
func (l *Load) creations() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.creates)
}

func TestCheck(t *testing.T) {
	l, users := run(t, 30)
	if r := l.Check(users); r.Lost != 0 || r.Duplicated != 0 || r.Failed != 0 || r.Accepted < 30 {
		t.Fatalf("honest store: %+v, want at least 30 accepted and nothing lost, duplicated or failed", r)
	}
	renamed := append([]user.User(nil), users...)
	renamed[len(renamed)-1].Name = "someone else"
	for _, tc := range []struct {
		name      string
		users     []user.User
		lost, dup int
	}{
		{"a user missing", users[1:], 1, 0},
		{"a user stored twice", append(append([]user.User(nil), users...), users[0]), 0, 1},
		{"an update lost", renamed, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := l.Check(tc.users)
			if r.Lost != tc.lost || r.Duplicated != tc.dup {
				t.Errorf("lost %d, duplicated %d; want %d and %d (%q)", r.Lost, r.Duplicated, tc.lost, tc.dup, r.Problems)
			}
		})
	}
}

// TestCheckSeesCreateRunTwice runs every CreateUser twice, as a retry
// without deduplication does, and answers the second result.
func TestCheckSeesCreateRunTwice(t *testing.T) {
	twice := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == userv1.UserService_CreateUser_FullMethodName {
			if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
				return err
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	l, users := run(t, 10, twice)
	r := l.Check(users)
	if r.Duplicated == 0 {
		t.Errorf("creates run twice: %+v, want them counted as duplicated", r)
	}
}
