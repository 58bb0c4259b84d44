package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/balancer"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// failoverTime is the most a failover may take: from the stop of the last
// instance of the local datacenter to the first call answered in the other.
const failoverTime = 2 * time.Second

// stageCalls is the number of calls answered in each stage (before the
// stop, after the failover, after the way back) before the next begins.
const stageCalls = 50

// maxFailedCalls bounds the calls that may fail across a failover and the
// way back (kit's retries included).
const maxFailedCalls = 10

// TestDatacenterFailover: a kit client through dc1-client-1's agent calls
// a service that has an instance in each datacenter. Its calls are
// answered in its local datacenter; that instance stopped, they are
// answered in the other within failoverTime; started again, they come
// back. The balancer's stats show the active datacenter at each stage, and
// few calls fail. With dc=dc2&failover=dc1, dc2 is the local datacenter of
// a client in dc1.
func TestDatacenterFailover(t *testing.T) {
	c := need(t)
	for _, tc := range []struct {
		name          string
		query         string
		local, remote string   // nodes serving the local and the failover datacenter
		order         []string // as the balancer shows them
	}{
		{"failover=dc2", "failover=dc2", "dc1-client-1", "dc2-client-1", []string{"local", "dc2"}},
		{"dc=dc2&failover=dc1", "dc=dc2&failover=dc1", "dc2-client-1", "dc1-client-1", []string{"dc2", "dc1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			service := fmt.Sprintf("failover%d", time.Now().UnixNano())
			localNode, remoteNode := node(t, c, tc.local), node(t, c, tc.remote)
			_, stopLocal := serveAs(t, registryOn(t, c, localNode), service, "local")
			serveAs(t, registryOn(t, c, remoteNode), service, "remote")
			api1 := consultest.NodeClient(t, c, node(t, c, "dc1-client-1"))
			for _, dc := range []string{"dc1", "dc2"} {
				took := waitFor(t, 30*time.Second, service+" passes in "+dc, func() bool {
					e, err := passing(api1, service, dc)
					return err == nil && len(e) == 1
				})
				t.Logf("%s passes in %s after %v", service, dc, took.Round(time.Millisecond))
			}

			var mon balancer.Monitor
			cc, err := kit.NewClient("consul:///"+service+"?"+tc.query,
				kit.WithDiscovery(registryOn(t, c, node(t, c, "dc1-client-1"))), kit.WithBalancerMonitor(&mon),
				kit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			calls := startCalling(t, testpbv1.NewTestServiceClient(cc))

			// datacenter waits until the balancer has want as its active
			// datacenter and checks the rest of its stats.
			datacenter := func(want balancer.DatacenterStats) {
				t.Helper()
				var got *balancer.DatacenterStats
				waitFor(t, 10*time.Second, "the balancer in "+want.Active, func() bool {
					st := mon.Stats()
					got = nil
					if len(st) == 1 {
						got = st[0].Datacenters
					}
					return got != nil && got.Active == want.Active
				})
				if diff := cmp.Diff(&want, got); diff != "" {
					t.Errorf("balancer datacenters (-want +got):\n%s", diff)
				}
			}

			start := time.Now()
			calls.waitAnswers(t, "local", stageCalls, start, 15*time.Second)
			datacenter(balancer.DatacenterStats{Active: tc.order[0], Order: tc.order, Switches: map[string]int64{}})
			failedBefore := calls.failures()

			stopped := time.Now()
			stopLocal()
			took := calls.waitAnswers(t, "remote", stageCalls, stopped, 15*time.Second)
			t.Logf("calls answered in %s %v after the stop of the last instance in %s", tc.order[1], took.Round(time.Millisecond), tc.order[0])
			if took > failoverTime {
				t.Errorf("failover took %v, want at most %v", took.Round(time.Millisecond), failoverTime)
			}
			datacenter(balancer.DatacenterStats{Active: tc.order[1], Order: tc.order, Failover: true, Switches: map[string]int64{tc.order[1]: 1}})
			failedOver := calls.failures()

			restarted := time.Now()
			serveAs(t, registryOn(t, c, localNode), service, "local")
			back := calls.waitAnswers(t, "local", stageCalls, restarted, 15*time.Second)
			t.Logf("calls back in %s %v after its instance started", tc.order[0], back.Round(time.Millisecond))
			datacenter(balancer.DatacenterStats{Active: tc.order[0], Order: tc.order, Switches: map[string]int64{tc.order[0]: 1, tc.order[1]: 1}})

			total, failed, errs := calls.stop()
			t.Logf("calls: %d, failed calls: %d (before the stop %d, across the failover %d, across the way back %d)",
				total, failed, failedBefore, failedOver-failedBefore, failed-failedOver)
			if failed > maxFailedCalls {
				t.Errorf("%d calls failed, want at most %d; first errors: %v", failed, maxFailedCalls, errs)
			}
		})
	}
}

// calling calls Echo in a loop, every 5ms, and records who answered.
type calling struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	results []callResult // guarded by mu
	failed  int          // guarded by mu
	errs    []error      // guarded by mu; the first failures' errors
}

// callResult is one call: when it began, and the server that answered it
// ("" when it failed).
type callResult struct {
	start  time.Time
	server string
}

// startCalling starts calling client until stop or the end of the test.
func startCalling(t *testing.T, client testpbv1.TestServiceClient) *calling {
	ctx, cancel := context.WithCancel(context.Background())
	c := &calling{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			callCtx, cancelCall := context.WithTimeout(ctx, 2*time.Second)
			resp, err := client.Echo(callCtx, &testpbv1.EchoRequest{Message: "hi"})
			cancelCall()
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.results = append(c.results, callResult{start, resp.GetServer()})
			if err != nil {
				c.failed++
				if len(c.errs) < 5 {
					c.errs = append(c.errs, err)
				}
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.stop() })
	return c
}

// waitAnswers waits up to d until n calls begun after since were answered
// by server, and returns the time from since to the first one's start.
func (c *calling) waitAnswers(t *testing.T, server string, n int, since time.Time, d time.Duration) time.Duration {
	t.Helper()
	var first time.Time
	seen := 0
	waitFor(t, d, fmt.Sprintf("%d calls answered by %s", n, server), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		first, seen = time.Time{}, 0
		for _, r := range c.results {
			if r.server == server && !r.start.Before(since) {
				if seen++; seen == 1 {
					first = r.start
				}
			}
		}
		return seen >= n
	})
	return first.Sub(since)
}

// failures returns the number of failed calls so far.
func (c *calling) failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// stop stops calling and returns the calls made, the failed ones and the
// first failures' errors.
func (c *calling) stop() (calls, failed int, errs []error) {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.results), c.failed, c.errs
}
