package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	kitbalancer "github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/internal/figdata"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

const (
	callsPerSecond = 5000 // about 1k per backend
	deadline       = 200 * time.Millisecond
	settle         = time.Second // load before the fault
	tail           = time.Second // final span over which the faulty backend's share is measured
)

// scenario injects a fault into backends[0] (or all of them) at t0.
type scenario struct {
	name    string
	inject  func(bs []*backend)
	recover func(bs []*backend) error // nil: the fault lasts to the end
	faultOn time.Duration             // how long before recover
	after   time.Duration             // load after the fault (after recovery when recover is set)
}

var scenarios = []scenario{
	{name: "kill 1 of 5", inject: func(bs []*backend) { bs[0].srv.Stop() }, after: 3 * time.Second},
	{name: "1 of 5 answers UNAVAILABLE", inject: func(bs []*backend) { bs[0].fault.Store(int32(unavailable)) }, after: 3 * time.Second},
	{name: "1 of 5 black hole, 200ms deadline", inject: func(bs []*backend) { bs[0].fault.Store(int32(blackhole)) }, after: 3 * time.Second},
	{name: "1 of 5 fails 10% of calls", inject: func(bs []*backend) { bs[0].fault.Store(int32(tenPercent)) }, after: 4 * time.Second},
	{name: "all fail 2s, then recover", inject: func(bs []*backend) {
		for _, b := range bs {
			b.fault.Store(int32(unavailable))
		}
	}, recover: func(bs []*backend) error {
		for _, b := range bs {
			b.fault.Store(int32(healthy))
		}
		return nil
	}, faultOn: 2 * time.Second, after: 4 * time.Second},
}

// record is one call of the load.
type record struct {
	start time.Duration // since the fault
	peer  string        // backend reached, "" if none
	err   error
}

func scenarioTable(charts *[]figdata.Chart) error {
	fmt.Printf("## Fault scenarios: 5 loopback backends, ~%d calls/s (~1k per backend), %v deadline, no retries\n\n", callsPerSecond, deadline)
	fmt.Println("| scenario | policy | calls after fault | failed | fault → ejection | faulty backend's share, last 1s | notes |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | --- |")
	for _, sc := range scenarios {
		var runs []faultRun
		for _, pol := range serviceConfigs {
			row, run, err := runScenario(sc, pol.config)
			if err != nil {
				return fmt.Errorf("%s with %s: %w", sc.name, pol.name, err)
			}
			fmt.Printf("| %s | %s | %s |\n", sc.name, pol.name, row)
			run.policy = pol.name
			runs = append(runs, run)
		}
		*charts = append(*charts, faultCharts(sc.name, runs)...)
	}
	fmt.Println()
	fmt.Println("fault → ejection: when the last call reached the faulty backend, counted from the fault, if it got no call in the last second; \"never\" otherwise.")
	fmt.Println()
	return nil
}

// runScenario runs sc with serviceConfig and returns its table row and its
// calls.
func runScenario(sc scenario, serviceConfig string) (string, faultRun, error) {
	bs, err := startBackends(5)
	if err != nil {
		return "", faultRun{}, err
	}
	defer stopBackends(bs)
	var mon kitbalancer.Monitor
	cc, client, err := dial(bs, serviceConfig, &mon)
	if err != nil {
		return "", faultRun{}, err
	}
	defer cc.Close()
	if err := warm(client, bs); err != nil {
		return "", faultRun{}, err
	}
	bad := bs[0].addr

	var mu sync.Mutex
	var recs []record
	var t0 time.Time // guarded by mu; zero until the fault
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { generate(ctx, client, &mu, &recs, &t0) })

	time.Sleep(settle)
	mu.Lock()
	t0 = time.Now()
	mu.Unlock()
	sc.inject(bs)
	var recovered time.Duration
	if sc.recover != nil {
		time.Sleep(sc.faultOn)
		if err := sc.recover(bs); err != nil {
			stop()
			wg.Wait()
			return "", faultRun{}, err
		}
		recovered = sc.faultOn
	}
	time.Sleep(sc.after)
	stop()
	wg.Wait()
	events := ""
	for _, st := range mon.Stats() {
		if st.Target == "bench:///backends" {
			events = fmt.Sprintf("ejections %d, re-admissions %d, demotions %d", st.Events.Ejections, st.Events.Readmissions, st.Events.Demotions)
		}
	}

	end := recovered + sc.after
	run := faultRun{recs: recs, bad: bad, recovered: recovered, end: end}
	var calls, failed, tailCalls, tailBad, madeUp, failedAfterRecovery int
	var lastBad, lastFailure time.Duration
	for _, r := range recs {
		if r.start < 0 {
			continue
		}
		calls++
		if r.err != nil {
			failed++
			lastFailure = max(lastFailure, r.start)
			if !strings.Contains(status.Convert(r.err).Message(), injectedMsg) && status.Code(r.err).String() != "DeadlineExceeded" {
				madeUp++
			}
			if sc.recover != nil && r.start >= recovered {
				failedAfterRecovery++
			}
		}
		reachedBad := r.peer == bad || (r.peer == "" && r.err != nil)
		if reachedBad {
			lastBad = max(lastBad, r.start)
		}
		if r.start >= end-tail {
			tailCalls++
			if reachedBad {
				tailBad++
			}
		}
	}
	ejection := "never"
	if tailBad == 0 && sc.recover == nil {
		ejection = fmt.Sprintf("%.1f ms", float64(lastBad.Microseconds())/1000)
	}
	share := 0.0
	if tailCalls > 0 {
		share = 100 * float64(tailBad) / float64(tailCalls)
	}
	notes := ""
	if sc.recover != nil {
		ejection = "n/a"
		share = 0
		last := "none"
		if lastFailure >= recovered {
			last = fmt.Sprintf("last %.0f ms after it", float64((lastFailure-recovered).Microseconds())/1000)
		}
		notes = join(fmt.Sprintf("failed after recovery: %d (%s); errors not from the servers: %d", failedAfterRecovery, last, madeUp), events)
		return fmt.Sprintf("%d | %d | %s | n/a | %s", calls, failed, ejection, notes), run, nil
	}
	if madeUp > 0 {
		notes = fmt.Sprintf("%d errors made on the client side", madeUp)
	}
	notes = join(notes, events)
	return fmt.Sprintf("%d | %d | %s | %.1f%% | %s", calls, failed, ejection, share, notes), run, nil
}

func join(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// generate issues calls at callsPerSecond until ctx is done, recording each
// relative to the fault time.
func generate(ctx context.Context, client testpbv1.TestServiceClient, mu *sync.Mutex, recs *[]record, t0 *time.Time) {
	const perTick = callsPerSecond / 1000
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	req := &testpbv1.EchoRequest{Message: "load"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		for range perTick {
			wg.Go(func() {
				start := time.Now()
				var p peer.Peer
				callCtx, cancel := context.WithTimeout(context.Background(), deadline)
				_, err := client.Echo(callCtx, req, grpc.Peer(&p))
				cancel()
				addr := ""
				if p.Addr != nil {
					addr = p.Addr.String()
				}
				mu.Lock()
				rel := time.Duration(-1)
				if !t0.IsZero() {
					rel = start.Sub(*t0)
				}
				*recs = append(*recs, record{start: rel, peer: addr, err: err})
				mu.Unlock()
			})
		}
	}
}
