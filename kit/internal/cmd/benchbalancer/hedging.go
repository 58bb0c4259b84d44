package main

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// hedgeRate is the open-loop load of the hedging scenario, in calls/s.
const hedgeRate = 2000

// hedgingTable runs the hedging scenario: 5 backends, one of which answers
// one call in 10 50 ms late, with and without hedging at the method's p95.
func hedgingTable() error {
	fmt.Printf("## Hedging: 5 loopback backends, one answers 1 call in 10 50 ms late; %d calls/s open loop, %v warm-up then %v measured\n\n", hedgeRate, warmUp, measure)
	fmt.Println("| policy | hedging | calls | p50 | p90 | p99 | p99.9 | p99 / without | p99.9 / without | backend calls per call | failed |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, pol := range []struct{ name, config string }{
		{"round_robin", configOf("round_robin")},
		{"kit_weighted, load_aware off", `{"loadBalancingConfig":[{"kit_weighted":{"load_aware":false}}]}`},
		{"kit_weighted", configOf("kit_weighted")},
	} {
		var without []call
		for _, hedged := range []bool{false, true} {
			calls, perCall, err := hedgingRun(pol.config, hedged)
			if err != nil {
				return err
			}
			label, p99, p999 := "off", "1.00x", "1.00x"
			if hedged {
				label = "p95"
				p99 = fmt.Sprintf("%.2fx", float64(quantile(calls, 0.99))/float64(quantile(without, 0.99)))
				p999 = fmt.Sprintf("%.2fx", float64(quantile(calls, 0.999))/float64(quantile(without, 0.999)))
			} else {
				without = calls
			}
			fmt.Printf("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %.3f | %d |\n", pol.name, label, len(calls),
				ms(quantile(calls, 0.5)), ms(quantile(calls, 0.9)), ms(quantile(calls, 0.99)), ms(quantile(calls, 0.999)),
				p99, p999, perCall, failed(calls))
		}
	}
	fmt.Println()
	fmt.Println("hedging p95: retry's hedging on Echo (idempotency_level NO_SIDE_EFFECTS), delay at the method's p95 of first attempts, at most 2 attempts, the default retry budget (10% of calls + 10/s). Backend calls per call: the calls the backends received over the calls made (1 + hedges).")
	fmt.Println()
	return nil
}

// hedgingRun runs the scenario once over the policy of serviceConfig and
// returns the calls measured and the backend calls per call made.
func hedgingRun(serviceConfig string, hedged bool) ([]call, float64, error) {
	bs, err := startBackends(5)
	if err != nil {
		return nil, 0, err
	}
	defer stopBackends(bs)
	bs[0].delay.Store(int64(50 * time.Millisecond))
	bs[0].slowEvery.Store(10)
	cfg := retry.DefaultConfig()
	if hedged {
		cfg.Hedging.Methods = []string{testpbv1.TestService_Echo_FullMethodName}
	}
	r, err := retry.New(cfg)
	if err != nil {
		return nil, 0, err
	}
	cc, client, err := dial(bs, serviceConfig, nil, grpc.WithUnaryInterceptor(r.UnaryClientInterceptor()))
	if err != nil {
		return nil, 0, err
	}
	defer cc.Close()
	if err := warm(client, bs); err != nil {
		return nil, 0, err
	}
	var before, after int64
	for _, b := range bs {
		before += b.calls.Load()
	}
	calls := openLoop(client, hedgeRate, warmUp+measure)
	for _, b := range bs {
		after += b.calls.Load()
	}
	perCall := float64(after-before) / float64(len(calls))
	return window(calls, warmUp, warmUp+measure), perCall, nil
}

// openLoop starts rate calls per second for d, each with a 1 s deadline,
// whatever the answers, and returns every call once all have ended.
func openLoop(client testpbv1.TestServiceClient, rate int, d time.Duration) []call {
	var mu sync.Mutex
	var calls []call
	var wg sync.WaitGroup
	req := &testpbv1.EchoRequest{Message: "load"}
	begin := time.Now()
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	due := 0
	for now := range tk.C {
		elapsed := now.Sub(begin)
		if elapsed >= d {
			break
		}
		for ; due < int(elapsed.Seconds()*float64(rate)); due++ {
			wg.Go(func() {
				c := timedCall(client, req, begin)
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return calls
}
