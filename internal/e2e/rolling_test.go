package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpckit/grpckit/internal/writeload"
	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

// TestRollingRestartFailsNoCall restarts every greeter instance in turn through
// Shutdown while clients call consul:///greeter in a loop; no call may fail.
func TestRollingRestartFailsNoCall(t *testing.T) {
	s := newStack(t)
	instances := []instance{s.startGreeter(nil), s.startGreeter(nil), s.startGreeter(nil)}
	s.waitInstances("greeter", len(instances))
	client := s.greeterClient()

	var calls, failures atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{} // responses by instance; guarded by mu
	var firstErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				resp, err := client.SayHello(callCtx, &greeterv1.SayHelloRequest{Name: "rolling"})
				cancel()
				if ctx.Err() != nil {
					return
				}
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mu.Lock()
				seen[resp.Instance]++
				mu.Unlock()
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	// waitServed waits until srv has answered calls.
	waitServed := func(srv instance) {
		t.Helper()
		name := "greeter@" + srv.addr
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := seen[name]
			mu.Unlock()
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s got no call within 10s", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, srv := range instances {
		waitServed(srv)
	}
	for i, old := range instances {
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := old.Shutdown(shutCtx); err != nil {
			t.Errorf("shutdown of instance %d: %v", i, err)
		}
		cancel()
		waitServed(s.startGreeter(nil))
	}
	stop()
	wg.Wait()
	t.Logf("rolling restart of 3 instances: %d calls, %d failed", calls.Load(), failures.Load())
	if calls.Load() < 100 {
		t.Errorf("only %d calls made; the load loop did not run", calls.Load())
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d calls failed during the rolling restart; first: %v", n, firstErr.Load())
	}
}

// TestRollingRestartLosesNoWrite restarts every user instance in turn
// (three, sharing one SQLite file) through Shutdown while writers create
// and rename users through consul:///user, with request ids and retries;
// afterwards the store must hold every accepted write exactly once, and no
// call may fail.
func TestRollingRestartLosesNoWrite(t *testing.T) {
	s := newStack(t)
	db := filepath.Join(t.TempDir(), "users.db")
	startUser := func() instance {
		t.Helper()
		store, err := user.OpenSQLite(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() }) // registered first: runs after the server's shutdown
		return s.serve("user", func(srv *kit.Server) {
			userv1.RegisterUserServiceServer(srv, user.NewServer(store, user.WithLogger(quiet)))
		})
	}
	instances := []instance{startUser(), startUser(), startUser()}
	s.waitInstances("user", len(instances))

	tok, err := writeload.Token()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := kit.NewClient("consul:///user", kit.WithDiscovery(s.reg),
		kit.WithDedupedMethods(writeload.Methods...),
		kit.WithPerRPCCredentials(auth.BearerToken(tok, auth.AllowInsecure())))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	writes := writeload.Start(ctx, userv1.NewUserServiceClient(cc), fmt.Sprintf("rolling-%d", time.Now().UnixNano()), 4, 300, 5*time.Second)
	defer writes.Stop()

	// waitWrites waits until n more writes were accepted.
	waitWrites := func(n int) {
		t.Helper()
		want := writes.Accepted() + n
		deadline := time.Now().Add(10 * time.Second)
		for writes.Accepted() < want {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d writes accepted within 10s", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitWrites(50)
	for i, old := range instances {
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := old.Shutdown(shutCtx); err != nil {
			t.Errorf("shutdown of user instance %d: %v", i, err)
		}
		cancel()
		startUser()
		s.waitInstances("user", len(instances))
		waitWrites(50)
	}
	writes.Stop()

	store, err := user.OpenSQLite(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	users, err := writeload.ReadUsers(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	r := writes.Check(users)
	t.Logf("rolling restart of 3 user instances: %d writes accepted, %d failed, %d lost, %d duplicated", r.Accepted, r.Failed, r.Lost, r.Duplicated)
	if r.Lost != 0 || r.Duplicated != 0 || r.Failed != 0 {
		t.Errorf("writes lost: %d, duplicated: %d, failed: %d, want none: %q", r.Lost, r.Duplicated, r.Failed, r.Problems)
	}
	if r.Accepted < 200 {
		t.Errorf("only %d writes accepted; the writers did not run", r.Accepted)
	}
	// Every accepted write went through the journal: kit's server chain
	// gives the handler the call's request id.
	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var records int
	if err := sdb.QueryRowContext(t.Context(), "SELECT count(*) FROM "+dedupe.JournalTable).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if records < r.Accepted {
		t.Errorf("%d journal records for %d accepted writes", records, r.Accepted)
	}
}
