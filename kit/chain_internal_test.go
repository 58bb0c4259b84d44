package kit

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
)

// trace records the order in which chain members ran.
type trace struct {
	mu  sync.Mutex
	got []string
}

func (t *trace) add(s string) {
	t.mu.Lock()
	t.got = append(t.got, s)
	t.mu.Unlock()
}

func TestUnaryServerChainOrder(t *testing.T) {
	var tr trace
	mk := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			tr.add(name + ">" + info.FullMethod)
			resp, err := h(ctx, req.(int)+1)
			tr.add("<" + name)
			return resp, err
		}
	}
	chain := chainUnaryServer([]grpc.UnaryServerInterceptor{mk("a"), mk("b"), mk("c")})
	for range 3 { // the pooled state is reused between calls
		tr.got = nil
		resp, err := chain(context.Background(), 0, &grpc.UnaryServerInfo{FullMethod: "/s/M"},
			func(_ context.Context, req any) (any, error) { tr.add(fmt.Sprint("handler ", req)); return req, nil })
		if err != nil || resp != 3 {
			t.Fatalf("chain = %v, %v; want 3 (each layer added 1)", resp, err)
		}
		if diff := cmp.Diff([]string{"a>/s/M", "b>/s/M", "c>/s/M", "handler 3", "<c", "<b", "<a"}, tr.got); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
	}
}

func TestUnaryClientChainRepeatsAndPanics(t *testing.T) {
	calls := 0
	// The middle interceptor invokes the rest twice, as retry does.
	twice := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if err := inv(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		return inv(ctx, method, req, reply, cc, opts...)
	}
	pass := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return inv(ctx, method, req, reply, cc, opts...)
	}
	chain := chainUnaryClient([]grpc.UnaryClientInterceptor{pass, twice, pass})
	final := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		calls++
		if method == "/s/Panic" {
			panic("boom")
		}
		return nil
	}
	if err := chain(context.Background(), "/s/M", nil, nil, nil, final); err != nil || calls != 2 {
		t.Fatalf("chain = %v after %d invocations, want nil after 2", err, calls)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		chain(context.Background(), "/s/Panic", nil, nil, nil, final)
	}()
	calls = 0
	if err := chain(context.Background(), "/s/M", nil, nil, nil, final); err != nil || calls != 2 {
		t.Errorf("after a panic: chain = %v after %d invocations, want nil after 2", err, calls)
	}
}

func TestUnaryServerChainConcurrent(t *testing.T) {
	add := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(ctx, req.(int)+1)
	}
	chain := chainUnaryServer([]grpc.UnaryServerInterceptor{add, add, add, add})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				want := g*10000 + i
				resp, _ := chain(context.Background(), want, &grpc.UnaryServerInfo{},
					func(_ context.Context, req any) (any, error) { return req, nil })
				if resp != want+4 {
					t.Errorf("got %v, want %d: calls share state", resp, want+4)
					return
				}
			}
		})
	}
	wg.Wait()
}
