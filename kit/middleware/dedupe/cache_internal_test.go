package dedupe

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/grpckit/grpckit/kit/duration"
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
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDKey, id))
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

func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"", "0123456789abcdef0123456789abcdef", "a b", "x\x00y", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !validRequestID(id) {
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
