package dedupe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware"
)

const method = "/test.v1.Service/Do"

// harness calls a Cache's interceptor directly, with a manual clock.
type harness struct {
	t      *testing.T
	c      *Cache
	reader *sdkmetric.ManualReader

	mu   sync.Mutex
	now  time.Time
	runs map[string]int // handler runs per request id
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	cfg.Methods = []string{method}
	if cfg.MaxEntriesPerCaller == 0 { // one caller makes every call: no share of its own
		cfg.MaxEntriesPerCaller = cfg.MaxEntries
	}
	c, err := New(cfg, WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, reader: reader, now: time.Unix(1000, 0), runs: map[string]int{}}
	c.now = func() time.Time {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.now
	}
	return h
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// call makes a call with request id and reports whether the handler ran.
func (h *harness) call(id string) bool {
	h.t.Helper()
	return h.callAs("", id)
}

// callAs makes a call from caller with request id and reports whether the
// handler ran.
func (h *harness) callAs(caller, id string) bool {
	h.t.Helper()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDKey, id))
	if caller != "" {
		ctx = middleware.WithCaller(ctx, caller)
	}
	ran := false
	resp, err := h.c.UnaryServerInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) {
		ran = true
		return wrapperspb.String(id), nil
	})
	if err != nil {
		h.t.Fatalf("call %s: %v", id, err)
	}
	if got := resp.(*wrapperspb.StringValue).GetValue(); got != id {
		h.t.Fatalf("call %s: response %q", id, got)
	}
	return ran
}

// evictions returns grpckit.dedupe.evictions by reason.
func (h *harness) evictions() map[string]int64 {
	h.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		h.t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "grpckit.dedupe.evictions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				reason, _ := dp.Attributes.Value("reason")
				got[reason.AsString()] += dp.Value
			}
		}
	}
	return got
}

func TestLRU(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Hour), MaxEntries: 2})
	var ran []bool
	for _, id := range []string{"a", "b", "a", "c", "b", "a", "c"} {
		// a, b run; a replays (and becomes most recent); c runs and evicts
		// b; b runs and evicts a; a runs and evicts c; c runs.
		ran = append(ran, h.call(id))
	}
	if diff := cmp.Diff([]bool{true, true, false, true, true, true, true}, ran); diff != "" {
		t.Errorf("handler ran (-want +got):\n%s", diff)
	}
	if got := h.c.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	if diff := cmp.Diff(map[string]int64{"capacity": 4}, h.evictions()); diff != "" {
		t.Errorf("evictions (-want +got):\n%s", diff)
	}
}

func TestTTL(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Minute), MaxEntries: 10})
	h.call("a")
	h.advance(30 * time.Second)
	h.call("b")
	if h.call("a") {
		t.Error("a ran again before its TTL")
	}
	h.advance(30 * time.Second) // a expires now, b in 30s
	if !h.call("a") {
		t.Error("a did not run again after its TTL")
	}
	h.advance(31 * time.Second) // b expires; the new a has 29s left
	if h.call("a") {
		t.Error("the second a expired early")
	}
	if !h.call("b") {
		t.Error("b did not run again after its TTL")
	}
	if diff := cmp.Diff(map[string]int64{"expired": 2}, h.evictions()); diff != "" {
		t.Errorf("evictions (-want +got):\n%s", diff)
	}
}

// TestExpiredSwept checks that expired results at the old end go when a new
// one is added, without being looked up.
func TestExpiredSwept(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Minute), MaxEntries: 10})
	h.call("a")
	h.call("b")
	h.advance(2 * time.Minute)
	h.call("c")
	if got := h.c.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}
}

func TestShrinkEvicts(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Minute), MaxEntries: 10})
	for _, id := range []string{"a", "b", "c", "d"} {
		h.call(id)
	}
	if err := h.c.SetConfig(Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{method}}); err != nil {
		t.Fatal(err)
	}
	if got := h.c.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}
	if h.call("d") {
		t.Error("the most recent result was evicted")
	}
	if !h.call("a") {
		t.Error("an old result survived")
	}
}

// TestPanicForgets checks that a handler panic lets the panic through and
// leaves no entry behind, so a retry runs.
func TestPanicForgets(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Minute), MaxEntries: 10})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go through")
			}
		}()
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDKey, "a"))
		h.c.UnaryServerInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) {
			panic("boom")
		})
	}()
	if !h.call("a") {
		t.Error("the call after a panic did not run")
	}
}

// TestReplayIsACopy checks that a caller changing its response does not
// change what is replayed.
func TestReplayIsACopy(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Minute), MaxEntries: 10})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDKey, "a"))
	resp, _ := h.c.UnaryServerInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) {
		return wrapperspb.String("a"), nil
	})
	resp.(*wrapperspb.StringValue).Value = "changed"
	if h.call("a") {
		t.Error("handler ran again")
	}
}

// TestPerCallerShare checks that one caller filling the cache evicts its
// own oldest results, not another caller's, and that SetConfig applies a
// smaller share at once.
func TestPerCallerShare(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Hour), MaxEntries: 10, MaxEntriesPerCaller: 3})
	for _, id := range []string{"a1", "a2"} {
		h.callAs("alice", id)
	}
	for i := range 20 { // mallory floods the cache
		h.callAs("mallory", fmt.Sprint("m", i))
	}
	if got := h.c.Len(); got != 5 {
		t.Errorf("Len = %d, want 5 (alice's 2 and mallory's 3)", got)
	}
	for _, id := range []string{"a1", "a2"} {
		if h.callAs("alice", id) {
			t.Errorf("alice's %s was evicted by another caller's calls", id)
		}
	}
	for _, tc := range []struct {
		id      string
		wantRan bool
	}{{"m19", false}, {"m18", false}, {"m17", false}, {"m16", true}, {"m0", true}} {
		if got := h.callAs("mallory", tc.id); got != tc.wantRan {
			t.Errorf("mallory's %s: handler ran = %v, want %v", tc.id, got, tc.wantRan)
		}
	}
	if diff := cmp.Diff(map[string]int64{"caller": 19}, h.evictions()); diff != "" {
		t.Errorf("evictions (-want +got):\n%s", diff)
	}
	if err := h.c.SetConfig(Config{TTL: duration.Duration(time.Hour), MaxEntries: 10, MaxEntriesPerCaller: 1, Methods: []string{method}}); err != nil {
		t.Fatal(err)
	}
	if got := h.c.Len(); got != 2 {
		t.Errorf("after SetConfig with a share of 1: Len = %d, want 2", got)
	}
	if h.callAs("alice", "a2") { // alice's most recent
		t.Error("alice's most recent result was evicted")
	}
	if !h.callAs("alice", "a1") {
		t.Error("alice's older result survived a share of 1")
	}
}

// TestDefaultPerCallerShare checks that the default share is a tenth of
// MaxEntries.
func TestDefaultPerCallerShare(t *testing.T) {
	for _, tc := range []struct {
		maxEntries, perCaller, want int
	}{{10000, 0, 1000}, {5, 0, 1}, {100, 500, 100}, {100, 7, 7}} {
		cc, err := compile(Config{TTL: duration.Duration(time.Minute), MaxEntries: tc.maxEntries, MaxEntriesPerCaller: tc.perCaller})
		if err != nil {
			t.Fatal(err)
		}
		if cc.perCaller != tc.want {
			t.Errorf("MaxEntries %d, MaxEntriesPerCaller %d: share %d, want %d", tc.maxEntries, tc.perCaller, cc.perCaller, tc.want)
		}
	}
}

// TestReusedIDRefused checks that a request id remembered, or running, for
// one request refuses another request, and that the remembered result
// stays.
func TestReusedIDRefused(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Hour), MaxEntries: 10})
	intercept := h.c.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: method}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDKey, "r1"))
	runs := 0
	handler := func(_ context.Context, req any) (any, error) {
		runs++
		return req, nil
	}
	if _, err := intercept(ctx, wrapperspb.String("pay 10"), info, handler); err != nil {
		t.Fatal(err)
	}
	_, err := intercept(ctx, wrapperspb.String("pay 1000"), info, handler)
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != ErrRequestIDReused.Error() {
		t.Errorf("another request under the id: %v, want INVALID_ARGUMENT %q", err, ErrRequestIDReused)
	}
	resp, err := intercept(ctx, wrapperspb.String("pay 10"), info, handler)
	if err != nil || resp.(*wrapperspb.StringValue).GetValue() != "pay 10" || runs != 1 {
		t.Errorf("the same request again: %v, %v after %d runs, want the replay of pay 10 after 1 run", resp, err, runs)
	}

	// While the first call runs.
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	ctx2 := metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDKey, "r2"))
	go func() {
		_, err := intercept(ctx2, wrapperspb.String("a"), info, func(context.Context, any) (any, error) {
			close(entered)
			<-release
			return wrapperspb.String("a"), nil
		})
		done <- err
	}()
	<-entered
	if _, err := intercept(ctx2, wrapperspb.String("b"), info, handler); status.Code(err) != codes.InvalidArgument {
		t.Errorf("another request under a running id: %v, want INVALID_ARGUMENT", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first call: %v", err)
	}
}

// TestFromContext checks the Request the handler gets, for a listed method
// and for one the cache does not deduplicate, and that a call without id or
// with an invalid one gets none.
func TestFromContext(t *testing.T) {
	h := newHarness(t, Config{TTL: duration.Duration(time.Hour), MaxEntries: 10})
	req := wrapperspb.String("body")
	for _, tc := range []struct {
		name   string
		method string
		md     metadata.MD
		want   *Request
	}{
		{"listed", method, metadata.Pairs(RequestIDKey, "r1"), &Request{Caller: "id:alice", Method: method, ID: "r1", Hash: HashRequest(req)}},
		{"not listed", "/test.v1.Service/Other", metadata.Pairs(RequestIDKey, "r1"), &Request{Caller: "id:alice", Method: "/test.v1.Service/Other", ID: "r1", Hash: HashRequest(req)}},
		{"no id", method, metadata.MD{}, nil},
		{"invalid id, not listed", "/test.v1.Service/Other", metadata.Pairs(RequestIDKey, "a b"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := middleware.WithCaller(metadata.NewIncomingContext(context.Background(), tc.md), "alice")
			var got *Request
			_, err := h.c.UnaryServerInterceptor()(ctx, req, &grpc.UnaryServerInfo{FullMethod: tc.method}, func(ctx context.Context, req any) (any, error) {
				if r, ok := FromContext(ctx); ok {
					got = &r
				}
				return req, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("FromContext (-want +got):\n%s", diff)
			}
		})
	}
	if HashRequest(req) == HashRequest(wrapperspb.String("other")) || HashRequest(req) == ([32]byte{}) {
		t.Error("HashRequest does not tell requests apart")
	}
	if HashRequest("not a message") != ([32]byte{}) {
		t.Error("HashRequest of a non-message is not the zero hash")
	}
}

func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"", "0123456789abcdef0123456789abcdef", "a b", "x\x00y", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidRequestID(id) {
			return
		}
		if len(id) == 0 || len(id) > maxIDLen {
			t.Fatalf("accepted %d bytes", len(id))
		}
		for _, b := range []byte(id) {
			if b <= ' ' || b > '~' {
				t.Fatalf("accepted byte %#x", b)
			}
		}
	})
}
