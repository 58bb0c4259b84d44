package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// testCatalog is a Catalog whose names the test sets.
type testCatalog struct {
	mu      sync.Mutex
	names   []string
	version uint64
	changed chan struct{}
}

func newTestCatalog() *testCatalog { return &testCatalog{changed: make(chan struct{})} }

func (c *testCatalog) set(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = names
	c.version++
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *testCatalog) Services(ctx context.Context, index uint64) ([]string, uint64, error) {
	for {
		c.mu.Lock()
		names, version, changed := slices.Clone(c.names), c.version, c.changed
		c.mu.Unlock()
		if version != index {
			return names, version, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// lockedLog collects log output.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// TestLearner: the learner serves a service's routes once an instance is
// healthy, follows its public methods, learns again when the instances'
// fingerprint changes (another API), gives none to a service without
// reflection (logged once), and removes the routes when the instances or
// the service go, and when it stops.
func TestLearner(t *testing.T) {
	// Servers by address, reached over bufconn: the shop, a greeter (with
	// reflection) and one without reflection.
	_, shopSrv := shopServer(t)
	greeterSrv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(greeterSrv, greeter.NewServer(nil))
	reflection.Register(greeterSrv)
	plainSrv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(plainSrv, greeter.NewServer(nil))
	servers := map[string]*bufconn.Listener{
		"shop-a:1":    serveBufconn(t, shopSrv),
		"greeter-b:1": serveBufconn(t, greeterSrv),
		"plain:1":     serveBufconn(t, plainSrv),
	}
	calls := dialBufconn(t, servers["shop-a:1"])

	var logs lockedLog
	g, err := New(testConfig(), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	reg := memory.New()
	cat := newTestCatalog()
	l := NewLearner(g, cat, reg, func(string) (grpc.ClientConnInterface, error) { return calls, nil }, "gateway")
	l.reflect = func(addr string) (*grpc.ClientConn, error) {
		lis, ok := servers[addr]
		if !ok {
			return nil, errors.New("no server at " + addr)
		}
		return grpc.NewClient("passthrough:///"+addr,
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		l.Run(ctx)
	}()
	defer func() {
		cancel()
		<-ran
	}()

	waitRoutes := func(what string, cond func([]Route) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(g.Routes()) {
			if time.Now().After(deadline) {
				t.Fatalf("waiting until %s: routes %+v", what, g.Routes())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	instance := func(addr, fp, public string) registry.Instance {
		host, _, _ := strings.Cut(addr, ":")
		meta := map[string]string{kit.MetaAPI: fp}
		if public != "" {
			meta[kit.MetaPublic] = public
		}
		return registry.Instance{ID: "shop-1", Name: "shop", Address: host, Port: 1, Meta: meta, Health: registry.HealthPassing}
	}
	register := func(inst registry.Instance) {
		t.Helper()
		if err := reg.Register(t.Context(), inst); err != nil {
			t.Fatal(err)
		}
	}

	register(instance("shop-a:1", "aaaa", shopAll))
	cat.set("gateway", "shop")
	waitRoutes("the shop's routes are public", func(rs []Route) bool {
		return len(rs) == 7 && !slices.ContainsFunc(rs, func(r Route) bool { return !r.Public || r.Backend != "shop" })
	})
	register(instance("shop-a:1", "aaaa", ""))
	waitRoutes("the shop's routes need a token", func(rs []Route) bool {
		return len(rs) == 7 && !slices.ContainsFunc(rs, func(r Route) bool { return r.Public })
	})
	// The same name now serves another API (its protos changed).
	register(instance("greeter-b:1", "bbbb", greeterv1.GreeterService_SayHello_FullMethodName))
	waitRoutes("the new API's routes", func(rs []Route) bool {
		return len(rs) == 1 && rs[0].Path == "/v1/hello/{name}" && rs[0].Public && rs[0].Backend == "shop"
	})

	// A service without reflection: no routes, one warning however often
	// its instances are seen.
	if err := reg.Register(t.Context(), registry.Instance{ID: "plain-1", Name: "plain", Address: "plain", Port: 1, Health: registry.HealthPassing}); err != nil {
		t.Fatal(err)
	}
	cat.set("gateway", "shop", "plain")
	deadline := time.Now().Add(10 * time.Second)
	for logs.count("cannot learn") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no warning for a service without reflection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cat.set("gateway", "shop", "plain") // seen again
	if n := len(g.routesOf("plain")); n != 0 {
		t.Errorf("%d routes for a service without reflection", n)
	}

	// No healthy instance, but still in the catalog: the routes stay (they
	// answer 503); back, it is learnt again.
	if err := reg.Deregister(t.Context(), registry.Instance{ID: "shop-1", Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	register(instance("greeter-b:1", "bbbb", ""))
	waitRoutes("back, not public", func(rs []Route) bool { return len(rs) == 1 && !rs[0].Public })
	if err := reg.Deregister(t.Context(), registry.Instance{ID: "shop-1", Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	if n := len(g.routesOf("shop")); n != 1 {
		t.Errorf("%d routes of a service in the catalog without instances, want its 1", n)
	}
	// The service leaves the catalog: its watch ends with its routes.
	cat.set("gateway", "plain")
	waitRoutes("no routes after the service left the catalog", func(rs []Route) bool { return len(rs) == 0 })
	if n := logs.count("cannot learn"); n != 1 {
		t.Errorf("%d warnings for the service without reflection, want 1", n)
	}
}
