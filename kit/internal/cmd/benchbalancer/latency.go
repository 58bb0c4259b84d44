package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/grpckit/grpckit/kit/internal/figdata"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// Closed-loop load for the latency scenarios: callers, each with one call in
// flight, for warmUp and then measure.
const (
	callers = 16
	warmUp  = time.Second
	measure = 3 * time.Second
)

// latencyPolicies are the policies of the latency scenarios.
var latencyPolicies = []string{"round_robin", "least_request", "kit_weighted"}

// call is one call of a closed loop.
type call struct {
	start   time.Duration // since the load began
	latency time.Duration
	server  string // "" if it failed
}

// closedLoop runs callers against client for d and returns every call.
func closedLoop(client testpbv1.TestServiceClient, d time.Duration) []call {
	var mu sync.Mutex
	var calls []call
	begin := time.Now()
	var wg sync.WaitGroup
	req := &testpbv1.EchoRequest{Message: "load"}
	for range callers {
		wg.Go(func() {
			var mine []call
			for time.Since(begin) < d {
				mine = append(mine, timedCall(client, req, begin))
			}
			mu.Lock()
			calls = append(calls, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return calls
}

// timedCall makes one call with a 1 s deadline and records it.
func timedCall(client testpbv1.TestServiceClient, req *testpbv1.EchoRequest, begin time.Time) call {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := client.Echo(ctx, req)
	c := call{start: start.Sub(begin), latency: time.Since(start)}
	if err == nil {
		c.server = resp.GetServer()
	}
	return c
}

// window returns the calls that started in [from, to).
func window(calls []call, from, to time.Duration) []call {
	var out []call
	for _, c := range calls {
		if c.start >= from && c.start < to {
			out = append(out, c)
		}
	}
	return out
}

// addrsOf returns the backends' addresses.
func addrsOf(bs []*backend) []string {
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.addr
	}
	return addrs
}

// share returns the percentage of calls served by addr (0 of none: the
// charts leave such slices out).
func share(calls []call, addr string) float64 {
	if len(calls) == 0 {
		return 0
	}
	n := 0
	for _, c := range calls {
		if c.server == addr {
			n++
		}
	}
	return 100 * float64(n) / float64(len(calls))
}

// quantile returns the q-quantile of the calls' latencies.
func quantile(calls []call, q float64) time.Duration {
	if len(calls) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(calls))
	for i, c := range calls {
		ls[i] = c.latency
	}
	slices.Sort(ls)
	return ls[min(int(q*float64(len(ls))), len(ls)-1)]
}

func failed(calls []call) int {
	n := 0
	for _, c := range calls {
		if c.server == "" {
			n++
		}
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// latencyTable runs the latency scenarios that run selects (slow,
// recovery, graded, weights) for every policy.
func latencyTable(run func(string) bool, charts *[]figdata.Chart) error {
	fmt.Printf("## Slow instances: 5 loopback backends, %d callers in a closed loop, %v warm-up then %v measured\n\n", callers, warmUp, measure)
	for _, sc := range []struct {
		name string
		run  func(*[]figdata.Chart) error
	}{{"slow", slowInstance}, {"recovery", recovery}, {"graded", graded}, {"weights", weightsAtEqualLatency}} {
		if run(sc.name) {
			if err := sc.run(charts); err != nil {
				return err
			}
		}
	}
	return nil
}

// run starts n backends with the given delays, dials them with policy, and
// runs the closed loop for warmUp+d, calling during(bs) at warmUp+at when
// during is set.
func runLoop(delays []time.Duration, policy string, d time.Duration, at time.Duration, during func([]*backend)) ([]*backend, []call, error) {
	bs, err := startBackends(len(delays))
	if err != nil {
		return nil, nil, err
	}
	defer stopBackends(bs)
	for i, d := range delays {
		bs[i].delay.Store(int64(d))
	}
	cc, client, err := dial(bs, configOf(policy), nil)
	if err != nil {
		return nil, nil, err
	}
	defer cc.Close()
	if err := warm(client, bs); err != nil {
		return nil, nil, err
	}
	if during != nil {
		timer := time.AfterFunc(warmUp+at, func() { during(bs) })
		defer timer.Stop()
	}
	return bs, closedLoop(client, warmUp+d), nil
}

func slowInstance(charts *[]figdata.Chart) error {
	fmt.Println("### 1 of 5 answers 40 ms late")
	fmt.Println()
	fmt.Println("| policy | calls | slow one's share | p50 | p90 | p99 | p90 / all-fast p90 | all-fast p90 | failed |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var cdfs []figdata.Series
	for _, pol := range latencyPolicies {
		_, fast, err := runLoop(make([]time.Duration, 5), pol, measure, 0, nil)
		if err != nil {
			return err
		}
		fast = window(fast, warmUp, warmUp+measure)
		bs, calls, err := runLoop([]time.Duration{40 * time.Millisecond, 0, 0, 0, 0}, pol, measure, 0, nil)
		if err != nil {
			return err
		}
		*charts = append(*charts, slowSharesChart(pol, calls, addrsOf(bs)))
		calls = window(calls, warmUp, warmUp+measure)
		cdfs = append(cdfs, latencyCDF(pol, calls))
		p90, fp90 := quantile(calls, 0.9), quantile(fast, 0.9)
		fmt.Printf("| %s | %d | %.1f%% | %s | %s | %s | %.2fx | %s | %d |\n", pol, len(calls), share(calls, bs[0].addr),
			ms(quantile(calls, 0.5)), ms(p90), ms(quantile(calls, 0.99)), float64(p90)/float64(fp90), ms(fp90), failed(calls))
	}
	fmt.Println()
	*charts = append(*charts, latencyChart("balancer-slow-latency", "1 of 5 backends answers 40 ms late: latency per policy", cdfs))
	return nil
}

func recovery(charts *[]figdata.Chart) error {
	const slowFor, step = 2 * time.Second, 500 * time.Millisecond
	after := 6 * time.Second
	fmt.Printf("### 1 of 5 answers 40 ms late, then fast again after %v: its share in each %v after it recovered\n\n", slowFor, step)
	var head strings.Builder
	head.WriteString("| policy | last slow " + step.String())
	sep := "| --- | ---:"
	for t := time.Duration(0); t < after; t += step {
		fmt.Fprintf(&head, " | %v–%v", t, t+step)
		sep += " | ---:"
	}
	fmt.Println(head.String() + " | back to half of fair (10%) |")
	fmt.Println(sep + " | ---: |")
	for _, pol := range latencyPolicies {
		bs, calls, err := runLoop([]time.Duration{40 * time.Millisecond, 0, 0, 0, 0}, pol, slowFor+after, slowFor, func(bs []*backend) { bs[0].delay.Store(0) })
		if err != nil {
			return err
		}
		slow := bs[0].addr
		at := warmUp + slowFor
		*charts = append(*charts, recoveryChart(pol, sharesOverTime(calls, addrsOf(bs), backendNames(len(bs), "(40 ms late, then fast)"), warmUp, at+after, step/2, at)))
		row := fmt.Sprintf("| %s | %.1f%%", pol, share(window(calls, at-step, at), slow))
		back := "never"
		for t := time.Duration(0); t < after; t += step {
			sh := share(window(calls, at+t, at+t+step), slow)
			row += fmt.Sprintf(" | %.1f%%", sh)
			if sh >= 10 && back == "never" {
				back = "within " + (t + step).String()
			}
		}
		fmt.Println(row + " | " + back + " |")
	}
	fmt.Println()
	return nil
}

func graded(charts *[]figdata.Chart) error {
	delays := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 16 * time.Millisecond}
	fmt.Println("### Graded latencies: the 5 backends answer 1, 2, 4, 8 and 16 ms late")
	fmt.Println()
	fmt.Println("| policy | calls | 1 ms | 2 ms | 4 ms | 8 ms | 16 ms | p50 | p90 | p99 |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var cdfs []figdata.Series
	for _, pol := range latencyPolicies {
		bs, calls, err := runLoop(delays, pol, measure, 0, nil)
		if err != nil {
			return err
		}
		calls = window(calls, warmUp, warmUp+measure)
		cdfs = append(cdfs, latencyCDF(pol, calls))
		row := fmt.Sprintf("| %s | %d", pol, len(calls))
		for _, b := range bs {
			row += fmt.Sprintf(" | %.1f%%", share(calls, b.addr))
		}
		fmt.Printf("%s | %s | %s | %s |\n", row, ms(quantile(calls, 0.5)), ms(quantile(calls, 0.9)), ms(quantile(calls, 0.99)))
	}
	fmt.Println()
	*charts = append(*charts, latencyChart("balancer-graded-latency", "Backends 1, 2, 4, 8 and 16 ms late: latency per policy", cdfs))
	return nil
}

// weightsAtEqualLatency runs kit_weighted over 3 equally fast backends of
// Consul weights 1, 2 and 3, under the closed loop and one call at a time.
func weightsAtEqualLatency(*[]figdata.Chart) error {
	fmt.Println("### kit_weighted, 3 equally fast backends of weights 1, 2, 3 (shares 16.7%, 33.3%, 50.0% wanted)")
	fmt.Println()
	fmt.Println("| load | calls | weight 1 | weight 2 | weight 3 |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	bs, err := startBackends(3)
	if err != nil {
		return err
	}
	defer stopBackends(bs)
	r := manual.NewBuilderWithScheme("bench")
	var eps []resolver.Endpoint
	for i, b := range bs {
		eps = append(eps, weight.Set(resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.addr}}}, weight.EndpointInfo{Weight: uint32(i + 1)}))
	}
	r.InitialState(resolver.State{Endpoints: eps})
	cc, err := grpc.NewClient("bench:///backends", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(configOf("kit_weighted")))
	if err != nil {
		return err
	}
	defer cc.Close()
	client := testpbv1.NewTestServiceClient(cc)
	if err := warm(client, bs); err != nil {
		return err
	}
	row := func(load string, calls []call) {
		fmt.Printf("| %s | %d | %.2f%% | %.2f%% | %.2f%% |\n", load, len(calls), share(calls, bs[0].addr), share(calls, bs[1].addr), share(calls, bs[2].addr))
	}
	var seq []call
	for range 6000 {
		resp, err := client.Echo(context.Background(), &testpbv1.EchoRequest{Message: "one"})
		if err != nil {
			return err
		}
		seq = append(seq, call{server: resp.GetServer()})
	}
	row("one call at a time, 6000 calls", seq)
	calls := closedLoop(client, warmUp+measure)
	row(fmt.Sprintf("%d callers, %v", callers, measure), window(calls, warmUp, warmUp+measure))
	fmt.Println()
	return nil
}
