package user

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// deduped returns ctx carrying the deduplicated call of method with request
// id, as the server's dedupe interceptor gives it to the handler.
func deduped(ctx context.Context, method, id string, req any) context.Context {
	return dedupe.NewContext(ctx, dedupe.Request{Caller: "alice", Method: method, ID: id, Hash: dedupe.HashRequest(req)})
}

// journalRows returns the number of records in s's journal.
func journalRows(t *testing.T, s *SQLStore) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+dedupe.JournalTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// userRows returns every user of s.
func userRows(t *testing.T, s *SQLStore) []User {
	t.Helper()
	users, err := s.List(t.Context(), 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// TestStoreWritesOnce repeats each deduplicated write on a second store
// over the same database (another instance): the repeat gets the first
// result and writes nothing.
func TestStoreWritesOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		open := b.newDB(t)
		a, other := openStore(t, open), openStore(t, open)
		createReq := &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"}
		ctx := deduped(t.Context(), userv1.UserService_CreateUser_FullMethodName, "c1", createReq)
		first, err := a.Create(ctx, "Ada", "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		again, err := other.Create(ctx, "Ada", "ada@example.com")
		if err != nil {
			t.Fatalf("repeated Create: %v (want the first result)", err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("repeated Create (-first +repeat):\n%s", diff)
		}

		name := "Ada L."
		updateReq := &userv1.UpdateUserRequest{Id: first.ID, Name: &name}
		uctx := deduped(t.Context(), userv1.UserService_UpdateUser_FullMethodName, "u1", updateReq)
		updated, err := a.Update(uctx, first.ID, Patch{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		// Another update in between: the repeat must not undo it.
		later := "Countess"
		if _, err := a.Update(t.Context(), first.ID, Patch{Name: &later}); err != nil {
			t.Fatal(err)
		}
		again, err = other.Update(uctx, first.ID, Patch{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(updated, again); diff != "" {
			t.Errorf("repeated Update (-first +repeat):\n%s", diff)
		}
		if got, _ := a.Get(t.Context(), first.ID); got.Name != later {
			t.Errorf("after the repeated Update the name is %q, want %q", got.Name, later)
		}

		deleteReq := &userv1.DeleteUserRequest{Id: first.ID}
		dctx := deduped(t.Context(), userv1.UserService_DeleteUser_FullMethodName, "d1", deleteReq)
		if err := a.Delete(dctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if err := other.Delete(dctx, first.ID); err != nil {
			t.Errorf("repeated Delete: %v, want the first result (nil)", err)
		}
		if err := other.Delete(t.Context(), first.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete without request id: %v, want ErrNotFound", err)
		}

		// The same id for another request is refused; the id of a failed
		// call is not taken.
		other2 := &userv1.CreateUserRequest{Name: "Bob", Email: "bob@example.com"}
		if _, err := other.Create(deduped(t.Context(), userv1.UserService_CreateUser_FullMethodName, "c1", other2), "Bob", "bob@example.com"); !errors.Is(err, dedupe.ErrRequestIDReused) {
			t.Errorf("Create with a reused id: %v, want ErrRequestIDReused", err)
		}
		if _, err := a.Create(t.Context(), "Eve", "eve@example.com"); err != nil {
			t.Fatal(err)
		}
		eveCtx := deduped(t.Context(), userv1.UserService_CreateUser_FullMethodName, "c2", other2)
		if _, err := a.Update(deduped(t.Context(), userv1.UserService_UpdateUser_FullMethodName, "u2", nil), "no-such-id", Patch{Name: &name}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update of a missing user: %v, want ErrNotFound", err)
		}
		if _, err := a.Create(eveCtx, "Bob", "eve@example.com"); !errors.Is(err, ErrEmailTaken) {
			t.Fatalf("Create with a taken email: %v, want ErrEmailTaken", err)
		}
		if _, err := a.Create(eveCtx, "Bob", "bob@example.com"); err != nil {
			t.Errorf("retry of a failed Create: %v, want it to run", err)
		}
		if got := len(userRows(t, a)); got != 2 {
			t.Errorf("%d users, want 2 (Eve, Bob)", got)
		}
		if got := journalRows(t, a); got != 4 {
			t.Errorf("%d journal records, want 4 (c1, u1, d1, c2)", got)
		}
	})
}

// TestStoreConcurrentDuplicates runs one deduplicated Create and Update on
// several stores over one database at once: one write each, and every
// duplicate gets the same result.
func TestStoreConcurrentDuplicates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		open := b.newDB(t)
		stores := []*SQLStore{openStore(t, open), openStore(t, open), openStore(t, open)}
		ctx := deduped(t.Context(), userv1.UserService_CreateUser_FullMethodName, "c1", &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"})
		created := make([]User, len(stores)*2)
		errs := make([]error, len(created))
		var wg sync.WaitGroup
		for i := range created {
			wg.Go(func() { created[i], errs[i] = stores[i%len(stores)].Create(ctx, "Ada", "ada@example.com") })
		}
		wg.Wait()
		for i := range created {
			if errs[i] != nil {
				t.Fatalf("Create %d: %v", i, errs[i])
			}
			if diff := cmp.Diff(created[0], created[i]); diff != "" {
				t.Errorf("Create %d (-first +this):\n%s", i, diff)
			}
		}
		if got := len(userRows(t, stores[0])); got != 1 {
			t.Fatalf("%d users, want 1", got)
		}

		name := "Ada L."
		uctx := deduped(t.Context(), userv1.UserService_UpdateUser_FullMethodName, "u1", &userv1.UpdateUserRequest{Id: created[0].ID, Name: &name})
		updated := make([]User, len(stores)*2)
		for i := range updated {
			wg.Go(func() { updated[i], errs[i] = stores[i%len(stores)].Update(uctx, created[0].ID, Patch{Name: &name}) })
		}
		wg.Wait()
		for i := range updated {
			if errs[i] != nil {
				t.Fatalf("Update %d: %v", i, errs[i])
			}
			if diff := cmp.Diff(updated[0], updated[i]); diff != "" {
				t.Errorf("Update %d (-first +this):\n%s", i, diff)
			}
		}
		if got := journalRows(t, stores[0]); got != 2 {
			t.Errorf("%d journal records, want 2", got)
		}
	})
}

// TestStorePrunesJournal checks that a write prunes records older than
// JournalRetention, at most once per journalPruneEvery.
func TestStorePrunesJournal(t *testing.T) {
	s := newTestStore(t)
	var mu sync.Mutex
	now := time.Now()
	s.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	write := func(id string) { // a deduplicated Create when id is set, else a plain one
		t.Helper()
		ctx := t.Context()
		if id != "" {
			ctx = deduped(ctx, userv1.UserService_CreateUser_FullMethodName, id, nil)
		}
		if _, err := s.Create(ctx, "n", id+time.Now().String()+"@example.com"); err != nil {
			t.Fatal(err)
		}
		s.pruning.Wait()
	}
	write("r1") // the first write prunes (nothing yet)
	write("r2")
	if got := journalRows(t, s); got != 2 {
		t.Fatalf("%d records, want 2", got)
	}
	advance(JournalRetention + time.Hour)
	write("") // pruning is due: both records are older than the retention
	if got := journalRows(t, s); got != 0 {
		t.Errorf("after the retention: %d records, want 0", got)
	}
	// r3 is as old, for the store's clock, as r1 and r2 were: a prune now
	// would delete it, but the last one ran less than journalPruneEvery ago.
	write("r3")
	if got := journalRows(t, s); got != 1 {
		t.Errorf("a prune ran again within %v: %d records, want 1", journalPruneEvery, got)
	}
	advance(journalPruneEvery)
	write("")
	if got := journalRows(t, s); got != 0 {
		t.Errorf("%v later: %d records, want 0", journalPruneEvery, got)
	}
}

// serveUser serves a user Server on store over TCP on loopback, with the
// server interceptors outermost first and a dedupe cache (which gives the
// handler the call's dedupe.Request) innermost, and returns its address.
func serveUser(t *testing.T, store Store, interceptors ...grpc.UnaryServerInterceptor) string {
	t.Helper()
	cache, err := dedupe.New(dedupe.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(append(interceptors, cache.UnaryServerInterceptor())...))
	userv1.RegisterUserServiceServer(gs, NewServer(store))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// TestLostResponseRetriedOnAnotherInstance: instance A creates the user and
// its response is lost (A answers UNAVAILABLE and is gone from then on); the
// kit client retries with the same request id, the retry reaches instance
// B, which shares A's database and answers with the first result. One user
// is stored and the caller sees it, with A's id.
func TestLostResponseRetriedOnAnotherInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		open := b.newDB(t)
		storeA, storeB := openStore(t, open), openStore(t, open)
		r := manual.NewBuilderWithScheme("users")
		var addrB string
		var aRan, aGone atomic.Bool
		loseOnA := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if aGone.Load() {
				return nil, status.Error(codes.Unavailable, "test: instance A is gone")
			}
			resp, err := handler(ctx, req)
			if err != nil {
				return resp, err
			}
			aRan.Store(true)
			aGone.Store(true)
			r.UpdateState(resolver.State{Endpoints: []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: addrB}}}}})
			return nil, status.Error(codes.Unavailable, "test: response lost")
		}
		var bCalls atomic.Int32
		countOnB := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			bCalls.Add(1)
			return handler(ctx, req)
		}
		addrA := serveUser(t, storeA, loseOnA)
		addrB = serveUser(t, storeB, countOnB)
		r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: addrA}}}}})

		rcfg := retry.DefaultConfig()
		rcfg.MaxAttempts = 10
		rcfg.InitialBackoff, rcfg.MaxBackoff = duration.Duration(5*time.Millisecond), duration.Duration(20*time.Millisecond)
		retrier, err := retry.New(rcfg)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := kit.NewClient("users:///user",
			kit.WithDedupedMethods(userv1.UserService_CreateUser_FullMethodName),
			kit.WithRetry(retrier),
			kit.WithDialOptions(grpc.WithResolvers(r)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		resp, err := userv1.NewUserServiceClient(conn).CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if !aRan.Load() || bCalls.Load() == 0 {
			t.Fatalf("A ran the call: %v; calls on B: %d; want both", aRan.Load(), bCalls.Load())
		}
		users := userRows(t, storeB)
		if len(users) != 1 {
			t.Fatalf("%d users stored, want 1: %v", len(users), users)
		}
		if diff := cmp.Diff(toProto(users[0]), resp.GetUser(), protocmp.Transform()); diff != "" {
			t.Errorf("the caller got another user than the one A stored (-stored +got):\n%s", diff)
		}
	})
}
