package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/roundrobin" // registers round_robin
	"google.golang.org/grpc/connectivity"

	kitbalancer "github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/internal/lbtest"
)

// BenchmarkPickDone measures one Pick plus its Done, from parallel
// goroutines, for kit_weighted beside grpc-go's round_robin in the same run.
func BenchmarkPickDone(b *testing.B) {
	for _, n := range []int{5, 100, 1000} {
		for _, policy := range []string{"round_robin", kitbalancer.Name} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", policy, n), func(b *testing.B) {
				var cfg any
				if policy == kitbalancer.Name {
					cfg = kitbalancer.DefaultConfig()
				}
				p, bal, err := lbtest.Build(policy, lbConfig(cfg), lbtest.Endpoints(n))
				if err != nil {
					b.Fatal(err)
				}
				defer bal.Close()
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					info := balancer.PickInfo{FullMethodName: "/greeter.v1.GreeterService/SayHello", Ctx: context.Background()}
					for pb.Next() {
						res, err := p.Pick(info)
						if err != nil {
							b.Error(err)
							return
						}
						if res.Done != nil {
							res.Done(balancer.DoneInfo{BytesSent: true, BytesReceived: true}) // a successful call
						}
					}
				})
			})
		}
	}
}

// A resolver error before any endpoint fails calls with that error at once
// (endpointsharding alone would leave them waiting).
func TestResolverErrorBeforeEndpoints(t *testing.T) {
	cc := &lbtest.ClientConn{}
	bal := balancer.Get(kitbalancer.Name).Build(cc, balancer.BuildOptions{})
	defer bal.Close()
	bal.ResolverError(errors.New("consul: connection refused"))
	p, st := cc.Picker()
	if st != connectivity.TransientFailure || p == nil {
		t.Fatalf("state %v, picker %v; want TRANSIENT_FAILURE with a picker", st, p)
	}
	if _, err := p.Pick(balancer.PickInfo{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Pick = %v, want the resolver's error", err)
	}
}
