package kit

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// counting is a trivial layer for both sides: it counts the calls (client:
// attempts) that pass through it, notes whether they carried a deadline,
// and appends its name to a shared trace.
type counting struct {
	name     string
	trace    *trace
	calls    atomic.Int64
	deadline atomic.Bool // the last call had a deadline
}

func (c *counting) see(ctx context.Context) {
	c.calls.Add(1)
	_, ok := ctx.Deadline()
	c.deadline.Store(ok)
	if c.trace != nil {
		c.trace.add(c.name)
	}
}

func (c *counting) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		c.see(ctx)
		return h(ctx, req)
	}
}

func (c *counting) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		c.see(ss.Context())
		return h(srv, ss)
	}
}

func (c *counting) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		c.see(ctx)
		return inv(ctx, method, req, reply, cc, opts...)
	}
}

func (c *counting) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, s grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c.see(ctx)
		return s(ctx, desc, cc, method, opts...)
	}
}

// LayerCounting is the name of the test layer.
const LayerCounting Layer = "counting"

// countingEntries are the table entries of a counting layer on both sides;
// the layer is given with WithLayer (it has no default).
func countingEntries() (server, client layerDef) {
	return serverLayer[*counting](LayerCounting, none[struct{}](), nil),
		clientLayer[*counting](LayerCounting, none[struct{}](), nil)
}

// tableWith returns kit's table with e inserted right after the entry of
// after on e's side.
func tableWith(t *testing.T, e layerDef, after Layer) []layerDef {
	t.Helper()
	i := slices.IndexFunc(layerTable, func(d layerDef) bool { return d.name == after && d.side == e.side })
	if i < 0 {
		t.Fatalf("no %s entry for %s", e.side, after)
	}
	return slices.Insert(slices.Clone(layerTable), i+1, e)
}

// useTable makes the servers and clients built during the test use table
// instead of kit's (none of these tests is parallel).
func useTable(t *testing.T, table []layerDef) {
	prev := layerTable
	t.Cleanup(func() { layerTable = prev })
	layerTable = table
}

// flaky is a hand-written service whose method Call fails with UNAVAILABLE
// the first failFirst times.
type flaky struct {
	failFirst int64
	calls     atomic.Int64
}

const flakyMethod = "/kit.test.Flaky/Call"

func (f *flaky) register(s grpc.ServiceRegistrar) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "kit.test.Flaky",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				if f.calls.Add(1) <= f.failFirst {
					return nil, status.Error(codes.Unavailable, "not yet")
				}
				return new(emptypb.Empty), nil
			}
			if in == nil {
				return h(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: flakyMethod}, h)
		}}},
	}, f)
}

// serveFlaky starts a kit server with opts serving f; it returns its address.
func serveFlaky(t *testing.T, f *flaky, opts ...ServerOption) string {
	t.Helper()
	srv, err := NewServer(append([]ServerOption{WithAdminAddress(""), WithDrain(0), WithLogger(discard())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func callFlaky(t *testing.T, addr string, opts ...ClientOption) error {
	t.Helper()
	cc, err := NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	return cc.Invoke(context.Background(), flakyMethod, new(emptypb.Empty), new(emptypb.Empty))
}

// retryFlaky is a retry layer that may retry the flaky method.
func retryFlaky(t *testing.T) *retry.Retrier {
	t.Helper()
	cfg := retry.DefaultConfig()
	cfg.Methods = map[string]bool{flakyMethod: true}
	cfg.InitialBackoff, cfg.MaxBackoff = 1, 1
	r, err := retry.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLayerAddedThroughTheTable: a counting layer added with one table
// entry per side runs where the entry puts it, among kit's own layers.
func TestLayerAddedThroughTheTable(t *testing.T) {
	srvEntry, cliEntry := countingEntries()
	t.Run("server/inside timeout", func(t *testing.T) {
		useTable(t, tableWith(t, srvEntry, LayerTimeout))
		// Without a client deadline, only a layer inside the server's
		// timeout layer sees one (the ServerMax cap).
		c := &counting{}
		addr := serveFlaky(t, &flaky{}, WithLayer(LayerCounting, c))
		if err := callFlaky(t, addr, WithoutLayers(LayerTimeout)); err != nil {
			t.Fatal(err)
		}
		if c.calls.Load() != 1 || !c.deadline.Load() {
			t.Errorf("calls %d, deadline %v; want 1 call with the server's deadline", c.calls.Load(), c.deadline.Load())
		}
	})
	t.Run("server/outside timeout", func(t *testing.T) {
		useTable(t, tableWith(t, srvEntry, LayerLogging))
		c := &counting{}
		addr := serveFlaky(t, &flaky{}, WithLayer(LayerCounting, c))
		if err := callFlaky(t, addr, WithoutLayers(LayerTimeout)); err != nil {
			t.Fatal(err)
		}
		if c.calls.Load() != 1 || c.deadline.Load() {
			t.Errorf("calls %d, deadline %v; want 1 call without a deadline", c.calls.Load(), c.deadline.Load())
		}
	})
	t.Run("client/inside retry", func(t *testing.T) {
		useTable(t, tableWith(t, cliEntry, LayerRetry))
		// One logical call, one retry: a layer inside retry sees both attempts.
		c := &counting{}
		addr := serveFlaky(t, &flaky{failFirst: 1})
		err := callFlaky(t, addr, WithLayer(LayerCounting, c), WithRetry(retryFlaky(t)))
		if err != nil {
			t.Fatal(err)
		}
		if c.calls.Load() != 2 || !c.deadline.Load() {
			t.Errorf("calls %d, deadline %v; want 2 attempts with the client's default deadline", c.calls.Load(), c.deadline.Load())
		}
	})
	t.Run("client/outside timeout and retry", func(t *testing.T) {
		useTable(t, tableWith(t, cliEntry, LayerDedupe))
		c := &counting{}
		addr := serveFlaky(t, &flaky{failFirst: 1})
		err := callFlaky(t, addr, WithLayer(LayerCounting, c), WithRetry(retryFlaky(t)))
		if err != nil {
			t.Fatal(err)
		}
		if c.calls.Load() != 1 || c.deadline.Load() {
			t.Errorf("calls %d, deadline %v; want 1 call without a deadline", c.calls.Load(), c.deadline.Load())
		}
	})
}

// TestTableOrder: the chains run the table's entries in order, on both
// sides, whatever the order of the options.
func TestTableOrder(t *testing.T) {
	var tr trace
	a, b, c := &counting{name: "a", trace: &tr}, &counting{name: "b", trace: &tr}, &counting{name: "c", trace: &tr}
	var table []layerDef
	for _, n := range []Layer{"a", "b", "c"} {
		table = append(table, serverLayer[*counting](n, none[struct{}](), nil))
	}
	for _, n := range []Layer{"c", "a", "b"} {
		table = append(table, clientLayer[*counting](n, none[struct{}](), nil))
	}
	useTable(t, table)
	addr := serveFlaky(t, &flaky{}, WithLayer("c", c), WithLayer("a", a), WithLayer("b", b))
	if err := callFlaky(t, addr, WithLayer("b", b), WithLayer("a", a), WithLayer("c", c)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c", "a", "b", "a", "b", "c"}, tr.got); diff != "" {
		t.Errorf("order: client c, a, b then server a, b, c (-want +got):\n%s", diff)
	}
}

// TestLayerChoiceErrors: what options get wrong is refused by NewServer and
// NewClient with the layer named, and nothing is built.
func TestLayerChoiceErrors(t *testing.T) {
	lim, err := ratelimit.New(ratelimit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		srv  []ServerOption // nil: a client with cli
		cli  []ClientOption
		want string
	}{
		{"unknown off", []ServerOption{WithoutLayers("nope")}, nil, `unknown layer "nope"`},
		{"unknown given", nil, []ClientOption{WithLayer("nope", lim)}, `unknown layer "nope"`},
		{"given and off", []ServerOption{WithLayer(LayerRateLimit, lim), WithoutLayers(LayerRateLimit)}, nil, "both given and turned off"},
		{"server type on a client", nil, []ClientOption{WithLayer(LayerRateLimit, lim)}, "*ratelimit.ClientLimiter"},
		{"no client side", nil, []ClientOption{WithLayer(LayerRecovery, lim)}, `"recovery" has no client side`},
		{"wrong telemetry", []ServerOption{WithLayer(LayerTelemetry, lim)}, nil, "*telemetry.Telemetry"},
		{"bad dedupe pattern", nil, []ClientOption{WithDedupedMethods("CreateUser")}, "WithDedupedMethods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.srv != nil {
				_, err = NewServer(append(tc.srv, WithAdminAddress(""))...)
			} else {
				_, err = NewClient("passthrough:///x", tc.cli...)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// discard is a logger that writes nothing.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestWithDedupedMethodsAddsUp: several WithDedupedMethods make one layer
// stamping all their methods.
func TestWithDedupedMethodsAddsUp(t *testing.T) {
	var o clientOptions
	WithDedupedMethods("/a.A/X").applyClient(&o)
	WithDedupedMethods("/b.B/*").applyClient(&o)
	ch, _, err := buildChain(o.layers, clientSide, nil, deps{logger: discard(), meter: meterOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := layerAs[*dedupe.Stamper](ch, LayerDedupe)
	if !ok {
		t.Fatal("no dedupe layer")
	}
	if diff := cmp.Diff([]string{"/a.A/X", "/b.B/*"}, s.Config().Methods); diff != "" {
		t.Errorf("methods (-want +got):\n%s", diff)
	}
}

// TestTableEntries: every layer name has at most one entry per side, and
// every Layer constant but telemetry is in the table.
func TestTableEntries(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range layerTable {
		k := d.side.String() + "/" + string(d.name)
		if seen[k] {
			t.Errorf("two %s entries", k)
		}
		seen[k] = true
	}
	for _, l := range []Layer{LayerRecovery, LayerLogging, LayerRateLimit, LayerTimeout, LayerAuth, LayerDedupe, LayerRetry, LayerBreaker} {
		if !seen["server/"+string(l)] && !seen["client/"+string(l)] {
			t.Errorf("layer %s is in no chain", l)
		}
	}
}

// TestNilLayerObjectKeepsTheDefault: a nil object given for a layer (a
// server's Telemetry() when its telemetry is off, a nil *Limiter) leaves
// the layer as if no option were given.
func TestNilLayerObjectKeepsTheDefault(t *testing.T) {
	addr := serveFlaky(t, &flaky{}, WithRateLimit(nil), WithAuth(nil), WithTelemetry(nil))
	if err := callFlaky(t, addr, WithClientRateLimit(nil), WithRetry(nil), WithTelemetry(nil)); err != nil {
		t.Fatalf("call with nil layer objects: %v", err)
	}
	srv, err := NewServer(WithAdminAddress(""), WithRateLimit(nil), WithTelemetry(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if _, ok := LayerOf[*ratelimit.Limiter](srv, LayerRateLimit); !ok || srv.Telemetry() == nil {
		t.Errorf("rate limit %T, telemetry %v: want kit's defaults", srv.Layer(LayerRateLimit), srv.Telemetry())
	}
	if _, ok := LayerOf[*retry.Retrier](srv, LayerRateLimit); ok {
		t.Error("LayerOf accepted the wrong type")
	}
	if _, ok := LayerOf[*retry.Retrier](srv, LayerRetry); !ok {
		t.Error("LayerOf: no server-side retry layer")
	}
}

// TestCallerResolverWinsOverWrapping: a resolver given with
// WithDialOptions(grpc.WithResolvers(...)) for a registered scheme stays the
// client's resolver when kit wraps the registered one only to reach the
// balancer (WithLogger, WithAdminOf).
func TestCallerResolverWinsOverWrapping(t *testing.T) {
	addr := serveFlaky(t, &flaky{})
	r := manual.NewBuilderWithScheme("passthrough") // shadows grpc-go's registered passthrough
	r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: addr}}}}})
	// The target names an address that does not answer: only the caller's
	// resolver leads to the server.
	cc, err := NewClient("passthrough:///127.0.0.1:1", WithLogger(discard()), WithDialOptions(grpc.WithResolvers(r)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.Invoke(t.Context(), flakyMethod, new(emptypb.Empty), new(emptypb.Empty)); err != nil {
		t.Fatalf("the caller's resolver was not used: %v", err)
	}
}
