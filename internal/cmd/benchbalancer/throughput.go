package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

// throughputTable compares calls/s over 5 healthy backends, 64 calls in
// flight, alternating the policies over several rounds and taking medians.
func throughputTable(d time.Duration) error {
	bs, err := startBackends(5)
	if err != nil {
		return err
	}
	defer stopBackends(bs)
	const rounds, inFlight = 5, 64
	results := map[string][]float64{}
	policies := []string{"round_robin", "kit_weighted"}
	for range rounds {
		for _, name := range policies {
			rate, err := throughput(bs, configOf(name), inFlight, d)
			if err != nil {
				return err
			}
			results[name] = append(results[name], rate)
		}
	}
	fmt.Printf("## End-to-end throughput, 5 loopback backends, %d in flight, median of %d runs of %v\n\n", inFlight, rounds, d)
	fmt.Println("| policy | calls/s | ratio to round_robin |")
	fmt.Println("| --- | ---: | ---: |")
	base := median(results["round_robin"])
	for _, name := range policies {
		m := median(results[name])
		fmt.Printf("| %s | %.0f | %.3fx |\n", name, m, m/base)
	}
	fmt.Println()
	return nil
}

func configOf(name string) string {
	for _, c := range serviceConfigs {
		if c.name == name {
			return c.config
		}
	}
	panic("unknown policy " + name)
}

func throughput(bs []*backend, serviceConfig string, inFlight int, d time.Duration) (float64, error) {
	cc, client, err := dial(bs, serviceConfig)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	if err := warm(client, bs); err != nil {
		return 0, err
	}
	var calls, failures atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	req := &greeterv1.SayHelloRequest{Name: "bench"}
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := client.SayHello(context.Background(), req); err != nil {
					failures.Add(1)
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		return 0, fmt.Errorf("%d calls failed over healthy backends", f)
	}
	return float64(calls.Load()) / time.Since(start).Seconds(), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
