package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"google.golang.org/grpc/balancer"

	kitbalancer "github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/internal/lbtest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s, %d CPUs, %s, host %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), host)
}

// pickTable prints Pick+Done cost for round_robin and kit_weighted, with
// and without load awareness.
func pickTable() {
	fmt.Println("## Pick+Done, parallel (GOMAXPROCS goroutines), same run")
	fmt.Println()
	fmt.Println("| endpoints | round_robin ns/op | kit_weighted ns/op | ratio | kit_weighted, load_aware off, ns/op | kit_weighted allocs/op |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: |")
	off := kitbalancer.DefaultConfig()
	off.LoadAware = false
	for _, n := range []int{5, 100, 1000} {
		rr := benchPick("round_robin", nil, n)
		kw := benchPick(kitbalancer.Name, kitbalancer.DefaultConfig(), n)
		kwOff := benchPick(kitbalancer.Name, off, n)
		fmt.Printf("| %d | %.1f | %.1f | %.2fx | %.1f | %d |\n", n, ns(rr), ns(kw), ns(kw)/ns(rr), ns(kwOff), kw.AllocsPerOp())
	}
	fmt.Println()
}

func ns(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }

func benchPick(policy string, cfg *kitbalancer.Config, n int) testing.BenchmarkResult {
	return testing.Benchmark(func(b *testing.B) {
		var p balancer.Picker
		var bal balancer.Balancer
		var err error
		if cfg != nil {
			p, bal, err = lbtest.Build(policy, cfg, lbtest.Endpoints(n))
		} else {
			p, bal, err = lbtest.Build(policy, nil, lbtest.Endpoints(n))
		}
		if err != nil {
			b.Fatal(err)
		}
		defer bal.Close()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			info := balancer.PickInfo{FullMethodName: testpbv1.TestService_Echo_FullMethodName, Ctx: context.Background()}
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
