package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
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
