package kit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/chart"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/overload"
)

var nan = math.NaN()

// start is the fake time of the first sample.
var start = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// docOf returns a document with one target whose endpoints are eps.
func docOf(eps ...balancer.EndpointStats) DebugKit {
	return DebugKit{Balancers: []DebugBalancer{{Name: "consul:///svc", TargetStats: balancer.TargetStats{Target: "consul:///svc", Endpoints: eps}}}}
}

// TestHistoryPointsMatchCounters: each point is what the counters say
// between two samples (rates over the time that really passed), shares
// add up per second, state changes are marks dated by the sample that
// saw them, and the subjects of the page each have their series.
func TestHistoryPointsMatchCounters(t *testing.T) {
	h := newHistory(10*time.Second, time.Second)
	type sample struct {
		after time.Duration // since the previous sample
		doc   DebugKit
	}
	ep := func(addr string, calls int64, state balancer.EndpointState, mult, weight float64, latency time.Duration) balancer.EndpointStats {
		return balancer.EndpointStats{Addresses: addr, Calls: calls, State: state, Multiplier: mult, Weight: weight, Latency: duration.Duration(latency)}
	}
	calls := func(n uint64) *uint64 { return &n }
	server := func(doc DebugKit, served uint64, inFlight, limit int, refused int64) DebugKit {
		doc.Calls = calls(served)
		doc.Overload = &overload.ServerStats{Mode: overload.ModeAdaptive, InFlight: inFlight, Limit: limit, Refused: refused}
		doc.Clients = []DebugClient{{Target: "consul:///svc",
			Breakers:  []breaker.State{{Method: "/svc.S/Call", State: "closed"}},
			Throttles: []overload.ThrottleStats{{Target: "consul:///svc", Probability: 0}}}}
		return doc
	}
	samples := []sample{
		{0, server(docOf(ep("a", 0, "active", 1, 1, 0), ep("b", 0, "active", 1, 1, 0)), 0, 0, 10, 0)},
		{time.Second, server(docOf(ep("a", 30, "active", 1, 1, 2*time.Millisecond), ep("b", 10, "active", 1, 1, 4*time.Millisecond)), 40, 3, 12, 0)},
		{2 * time.Second, server(docOf(ep("a", 70, "active", 1, 1, 2*time.Millisecond), ep("b", 50, "active", 0.5, 0.5, 4*time.Millisecond)), 120, 5, 0, 6)},
		{time.Second, server(docOf(ep("a", 110, "active", 1, 1, 2*time.Millisecond), ep("b", 50, "ejected", 0.5, 0, 4*time.Millisecond)), 160, 1, 12, 6)},
		{time.Second, docOf(ep("a", 150, "active", 1, 1, 2*time.Millisecond), ep("b", 50, "ramping", 1, 0.1, 4*time.Millisecond))},
	}
	now := start
	for _, s := range samples {
		now = now.Add(s.after)
		h.record(now, s.doc)
	}
	got := h.snapshot()

	ms := func(d time.Duration) int64 { return start.Add(d).UnixMilli() }
	want := &DebugHistory{
		Step: duration.Duration(time.Second), Window: duration.Duration(10 * time.Second),
		Times: []int64{ms(0), ms(time.Second), ms(3 * time.Second), ms(4 * time.Second), ms(5 * time.Second)},
		Server: ServerHistory{
			CallsPerSecond:   HistorySeries{nan, 40, 40, 40, nan},
			InFlight:         HistorySeries{0, 3, 5, 1, nan},
			Limit:            HistorySeries{10, 12, nan, 12, nan},
			RefusedPerSecond: HistorySeries{nan, 0, 3, 0, nan},
		},
		Balancers: []TargetHistory{{Name: "consul:///svc", Target: "consul:///svc", Endpoints: []EndpointHistory{
			{Addresses: "a", CallsPerSecond: HistorySeries{nan, 30, 20, 40, 40}, Share: HistorySeries{nan, 0.75, 0.5, 1, 1},
				LatencyMS: HistorySeries{nan, 2, 2, 2, 2}, Weight: HistorySeries{1, 1, 1, 1, 1}},
			{Addresses: "b", CallsPerSecond: HistorySeries{nan, 10, 20, 0, 0}, Share: HistorySeries{nan, 0.25, 0.5, 0, 0},
				LatencyMS: HistorySeries{nan, 4, 4, 4, 4}, Weight: HistorySeries{1, 1, 0.5, 0, 0.1}},
		}, Marks: []HistoryMark{
			{Time: ms(3 * time.Second), Event: "demotion", Endpoint: "b", Detail: "multiplier 0.5"},
			{Time: ms(4 * time.Second), Event: "ejection", Endpoint: "b"},
			{Time: ms(5 * time.Second), Event: "readmission", Endpoint: "b"},
		}}},
		Clients: []ClientHistory{{Name: "consul:///svc", Target: "consul:///svc",
			Breakers:  []BreakerHistory{{Method: "/svc.S/Call", States: HistoryStates{"closed", "closed", "closed", "closed", ""}}},
			Throttles: []ThrottleHistory{{Target: "consul:///svc", Refusing: HistorySeries{0, 0, 0, 0, nan}}},
		}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	// JSON: null for NaN, and back.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back DebugHistory
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, &back, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("JSON round trip (-before +after):\n%s\n%s", diff, b)
	}
}

// TestHistoryMarksPanicAndFailover: panic mode beginning and ending and a
// change of active datacenter are marks of the target.
func TestHistoryMarksPanicAndFailover(t *testing.T) {
	h := newHistory(time.Minute, time.Second)
	doc := func(panic bool, dc string) DebugKit {
		d := docOf(balancer.EndpointStats{Addresses: "a", Multiplier: 1})
		d.Balancers[0].Panic = panic
		d.Balancers[0].Datacenters = &balancer.DatacenterStats{Active: dc, Order: []string{"dc1", "dc2"}}
		return d
	}
	for i, d := range []DebugKit{doc(false, "dc1"), doc(true, "dc1"), doc(true, "dc2"), doc(false, "dc1")} {
		h.record(start.Add(time.Duration(i)*time.Second), d)
	}
	want := []HistoryMark{
		{Time: start.Add(time.Second).UnixMilli(), Event: "panic"},
		{Time: start.Add(2 * time.Second).UnixMilli(), Event: "failover", Detail: "dc2"},
		{Time: start.Add(3 * time.Second).UnixMilli(), Event: "panic-end"},
		{Time: start.Add(3 * time.Second).UnixMilli(), Event: "failover", Detail: "dc1"},
	}
	if diff := cmp.Diff(want, h.snapshot().Balancers[0].Marks); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
}

// TestHistoryBounded: sampled far past its window while endpoints come and
// go, the history keeps one window of samples, drops the series and marks
// of endpoints gone for a window, and its memory stays put.
func TestHistoryBounded(t *testing.T) {
	const (
		window    = 300 // samples
		endpoints = 200 // at a time, over two targets
	)
	h := newHistory(window*time.Second, time.Second)
	// generation g of the endpoints: all of them replaced every 100
	// samples, each ejected and re-admitted on its way.
	docAt := func(k int) DebugKit {
		gen := k / 100
		var doc DebugKit
		for target := range 2 {
			ts := balancer.TargetStats{Target: fmt.Sprintf("consul:///svc%d", target)}
			for i := range endpoints / 2 {
				state := balancer.StateActive
				if (k+i)%10 == 0 {
					state = balancer.StateEjected
				}
				ts.Endpoints = append(ts.Endpoints, balancer.EndpointStats{
					Addresses: fmt.Sprintf("10.%d.%d.%d:80", gen%200, target, i), Calls: int64(k * (i + 1)),
					State: state, Multiplier: 1, Weight: 1,
				})
			}
			doc.Balancers = append(doc.Balancers, DebugBalancer{TargetStats: ts})
		}
		return doc
	}
	docs := make([]DebugKit, 0, 10*window)
	for k := range cap(docs) {
		docs = append(docs, docAt(k))
	}
	run := func(from, to int) {
		for k := from; k < to; k++ {
			h.record(start.Add(time.Duration(k)*time.Second), docs[k%len(docs)])
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	before := heap()
	run(0, 2*window)
	filled := heap()
	run(2*window, 10*window)
	after := heap()

	snap := h.snapshot()
	if len(snap.Times) != window {
		t.Errorf("%d sample times, want %d", len(snap.Times), window)
	}
	var series, marks int
	for _, th := range snap.Balancers {
		// The window holds three generations (the last 300 samples of 100
		// each): their endpoints, no older ones, as many as a balancer
		// keeps.
		if want := min(3*endpoints/2, maxHistoryEndpoints); len(th.Endpoints) != want {
			t.Errorf("%s: %d endpoints, want %d", th.Target, len(th.Endpoints), want)
		}
		for _, e := range th.Endpoints {
			for _, s := range []HistorySeries{e.CallsPerSecond, e.Share, e.LatencyMS, e.Weight} {
				series++
				if len(s) != window {
					t.Fatalf("%s: a series of %d points, want %d", e.Addresses, len(s), window)
				}
			}
		}
		for _, m := range th.Marks {
			if m.Time < snap.Times[0] {
				t.Errorf("a mark at %d, before the window (%d)", m.Time, snap.Times[0])
			}
		}
		marks += len(th.Marks)
	}
	if len(h.rates) > 2*maxHistoryEndpoints+2 {
		t.Errorf("%d counter readings kept for %d endpoints in the window", len(h.rates), 3*endpoints)
	}
	size := int64(filled) - int64(before)
	growth := int64(after) - int64(filled)
	t.Logf("%d series and %d marks in the window; %d samples took %d KiB (%.0f bytes a series), then %d more samples %+d KiB",
		series, marks, 2*window, size/1024, float64(size)/float64(series), 8*window, growth/1024)
	// A series is a ring of 300 float64 (2400 bytes); allow its share of
	// the maps and marks on top, and no growth past the window beyond
	// noise.
	if perSeries := float64(size) / float64(series); perSeries > 4000 {
		t.Errorf("%.0f bytes a series, want at most 4000", perSeries)
	}
	if growth > size/4 {
		t.Errorf("the heap grew by %d KiB over 8 more windows, after %d KiB for the first two", growth/1024, size/1024)
	}

	// A sample of the endpoints it has allocates next to nothing.
	k := 10 * window
	allocs := testing.AllocsPerRun(100, func() {
		h.record(start.Add(time.Duration(k)*time.Second), docs[len(docs)-1])
		k++
	})
	if allocs > 2 {
		t.Errorf("a sample of known endpoints allocates %v times, want at most 2", allocs)
	}
}

// TestHistoryConcurrentReaders: pages read the history while the sampler
// writes it; every snapshot is consistent (as many points in each series
// as sample times). Run with -race.
func TestHistoryConcurrentReaders(t *testing.T) {
	h := newHistory(20*time.Second, time.Second)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				snap := h.snapshot()
				for _, th := range snap.Balancers {
					for _, e := range th.Endpoints {
						if len(e.Share) != len(snap.Times) || len(e.CallsPerSecond) != len(snap.Times) {
							t.Errorf("%d times, %d shares, %d rates", len(snap.Times), len(e.Share), len(e.CallsPerSecond))
							return
						}
					}
				}
				if _, err := json.Marshal(snap); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for k := range 5000 {
		h.record(start.Add(time.Duration(k)*time.Second), docOf(
			balancer.EndpointStats{Addresses: "a", Calls: int64(10 * k), Multiplier: 1, Weight: 1},
			balancer.EndpointStats{Addresses: fmt.Sprintf("b%d", k/30), Calls: int64(k), Multiplier: 1, Weight: 1},
		))
	}
	close(done)
	wg.Wait()
	snap := h.snapshot()
	if len(snap.Times) != 20 || len(snap.Balancers) != 1 || len(snap.Balancers[0].Endpoints) != 2 {
		t.Errorf("after the run: %d times, %+v", len(snap.Times), snap.Balancers)
	}
}

// TestDebugKitHistoryCharts: the page draws the history as well-formed
// SVG charts holding the series they claim (the server's, the balancer's
// per endpoint, the client's breakers and throttle), their points are the
// JSON history's, and the JSON document carries the history.
func TestDebugKitHistoryCharts(t *testing.T) {
	srv := pageServer(t, "chartsvc")
	lis := serveDown(t)
	target := "passthrough:///" + lis.Addr().String()
	cc := connectedClient(t, target, WithAdminOf(srv))
	pageTargets(t, srv, 1)
	now := time.Now()
	for i := range 5 {
		if err := cc.Invoke(t.Context(), "/test.Down/Call", &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("call = %v, want UNAVAILABLE", err)
		}
		srv.history.record(now.Add(time.Duration(i)*time.Second), srv.debugDoc())
	}

	var doc DebugKit
	if err := json.Unmarshal([]byte(adminGet(t, srv, "/debug/kit?format=json")), &doc); err != nil {
		t.Fatal(err)
	}
	h := doc.History
	if h == nil || len(h.Times) != 5 || len(h.Balancers) != 1 || len(h.Clients) != 1 {
		t.Fatalf("JSON history: %+v", h)
	}
	ep := h.Balancers[0].Endpoints[0]
	if ep.Addresses != lis.Addr().String() || ep.CallsPerSecond[4] != 1 || ep.Share[4] != 1 {
		t.Errorf("endpoint history %+v, want a call a second, all of the target's", ep)
	}

	page := adminGet(t, srv, "/debug/kit")
	charts := map[string]chart.Drawn{}
	for _, svg := range regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(page, -1) {
		d, err := chart.Read(svg)
		if err != nil {
			t.Fatalf("%v:\n%s", err, svg)
		}
		charts[d.ID] = d
	}
	point := cmp.Comparer(func(a, b chart.Point) bool {
		return math.Abs(float64(a.Time-b.Time)) < 600 && math.Abs(a.Value-b.Value) < 0.02*math.Max(1, math.Abs(b.Value))
	})
	points := func(s HistorySeries, scale float64) []chart.Point {
		var out []chart.Point
		for i, v := range s {
			if !math.IsNaN(v) {
				out = append(out, chart.Point{Time: h.Times[i], Value: v * scale})
			}
		}
		return out
	}
	want := map[string]map[string][]chart.Point{
		"server-calls":        {"ended": points(h.Server.CallsPerSecond, 1), "refused (overload)": points(h.Server.RefusedPerSecond, 1)},
		"server-concurrency":  {"in flight": points(h.Server.InFlight, 1), "limit": points(h.Server.Limit, 1)},
		"calls-" + target:     {ep.Addresses: points(ep.CallsPerSecond, 1)},
		"share-" + target:     {ep.Addresses: points(ep.Share, 100)},
		"latency-" + target:   {ep.Addresses: points(ep.LatencyMS, 1)},
		"weight-" + target:    {ep.Addresses: points(ep.Weight, 1)},
		"throttles-" + target: {target: points(h.Clients[0].Throttles[0].Refusing, 100)},
	}
	for id, lines := range want {
		d, ok := charts[id]
		if !ok {
			t.Errorf("no chart %q; charts: %v", id, slices.Collect(maps.Keys(charts)))
			continue
		}
		if diff := cmp.Diff(lines, d.Lines, point, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("chart %s (-JSON +drawn):\n%s", id, diff)
		}
	}
	if len(want["share-"+target][ep.Addresses]) != 4 {
		t.Errorf("the share chart should hold 4 points (the first sample has no rate): %v", want["share-"+target])
	}
	breakers := charts["breakers-"+target].Bands["/test.Down/Call"]
	if len(breakers) == 0 || breakers[0] != "closed" {
		t.Errorf("breaker band: %v, want it to start closed", breakers)
	}
	if !strings.Contains(page, "a sample every 1s") {
		t.Error("the page does not say what the charts span")
	}
}

// TestHistoryTimesNeverGoBack: a sample taken after the wall clock was set
// back is dated by the previous one, so the times only grow and the charts
// draw every point inside their time axis.
func TestHistoryTimesNeverGoBack(t *testing.T) {
	h := newHistory(time.Minute, time.Second)
	ep := func(calls int64) DebugKit {
		return docOf(balancer.EndpointStats{Addresses: "a", Calls: calls, Multiplier: 1, Weight: 1})
	}
	for i, at := range []time.Duration{0, time.Second, -time.Hour, 3 * time.Second} {
		h.record(start.Add(at), ep(int64(10*i)))
	}
	got := h.snapshot()
	if !slices.IsSorted(got.Times) {
		t.Errorf("times %v go back", got.Times)
	}
	page := newDebugPage(DebugKit{History: got})
	for _, svg := range page.TargetCharts["consul:///svc"] {
		d, err := chart.Read(string(svg))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Lines["a"] {
			if p.Time < got.Times[0] || p.Time > got.Times[len(got.Times)-1] {
				t.Errorf("chart %s draws a point at %d, outside %v", d.ID, p.Time, got.Times)
			}
		}
	}
}

// TestDebugHistorySamplerNotStartedAfterShutdown: when Shutdown closes the
// admin listener between Serve's first check and its start of the admin
// listener, Serve starts no sampler (none would stop it).
func TestDebugHistorySamplerNotStartedAfterShutdown(t *testing.T) {
	srv, err := NewServer(WithDrain(0), WithAdminAddress("127.0.0.1:0"), WithDebugHistory(time.Minute, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Serve has checked that the server is not stopping, and marked it
	// serving; Shutdown runs to its end; then Serve starts the admin
	// listener.
	srv.mu.Lock()
	srv.serving = true
	srv.mu.Unlock()
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.startAdmin(); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	stop := srv.stopHistory
	srv.mu.Unlock()
	if stop != nil {
		stop() // for the leak check of TestMain
		t.Error("a history sampler was started after Shutdown")
	}
}

// serveOK serves every method with an empty reply, for calls that
// succeed.
func serveOK(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		return ss.SendMsg(new(emptypb.Empty))
	}))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// TestDebugKitHistoryTwoClientsOfOneTarget: two clients of one target,
// each with its balancer (its own Monitor, or one Monitor for both), have
// histories of their own under distinct names (the target, then
// "target#2"): their rates and shares are their own, no state change is
// made up from mixing them, and the page's charts have distinct ids.
func TestDebugKitHistoryTwoClientsOfOneTarget(t *testing.T) {
	srv := pageServer(t, "twosvc")
	a, b := "passthrough:///"+serveOK(t), "passthrough:///"+serveOK(t)
	shared := new(balancer.Monitor)
	clients := []*grpc.ClientConn{
		connectedClient(t, a, WithAdminOf(srv)), connectedClient(t, a, WithAdminOf(srv)),
		connectedClient(t, b, WithAdminOf(srv), WithBalancerMonitor(shared)),
		connectedClient(t, b, WithAdminOf(srv), WithBalancerMonitor(shared)),
	}
	pageTargets(t, srv, 4)
	now := time.Now()
	for i := range 5 {
		for j, cc := range clients {
			for range j + 1 { // client j makes j+1 calls a second
				if err := cc.Invoke(t.Context(), "/test.OK/Call", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		srv.history.record(now.Add(time.Duration(i)*time.Second), srv.debugDoc())
	}
	h := srv.history.snapshot()
	// Client j makes j+1 calls a sample; the shared Monitor's balancers
	// are named in the order of their IDs, which follow the clients'.
	rates := map[string]float64{a: 1, a + "#2": 2, b + "#3": 3, b + "#4": 4}
	var got []string
	for _, th := range h.Balancers {
		got = append(got, th.Name+" of "+th.Target)
		if len(th.Endpoints) != 1 {
			t.Fatalf("%s: endpoints %+v", th.Name, th.Endpoints)
		}
		e := th.Endpoints[0]
		if diff := cmp.Diff(HistorySeries{nan, 1, 1, 1, 1}, e.Share, cmpopts.EquateNaNs()); diff != "" {
			t.Errorf("%s: share (-want +got):\n%s", th.Name, diff)
		}
		if want := rates[th.Name]; e.CallsPerSecond[4] != want {
			t.Errorf("%s: %v calls/s, want its client's own rate, %v", th.Name, e.CallsPerSecond, want)
		}
		if len(th.Marks) != 0 {
			t.Errorf("%s: marks %+v, want none", th.Name, th.Marks)
		}
	}
	// A client's own balancer has its name; the balancers of a Monitor
	// that two clients share are named after their target, in the same
	// names as the clients.
	want := []string{a + " of " + a, a + "#2 of " + a, b + "#3 of " + b, b + "#4 of " + b}
	slices.Sort(want) // by name
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("balancers (-want +got):\n%s", diff)
	}
	got = nil
	for _, c := range h.Clients {
		got = append(got, c.Name+" of "+c.Target)
	}
	wantClients := []string{a + " of " + a, a + "#2 of " + a, b + " of " + b, b + "#2 of " + b}
	slices.Sort(wantClients)
	if diff := cmp.Diff(wantClients, got); diff != "" {
		t.Errorf("clients (-want +got):\n%s", diff)
	}

	page := adminGet(t, srv, "/debug/kit")
	ids := map[string]int{}
	for _, m := range regexp.MustCompile(`<svg [^>]*id="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		ids[m[1]]++
	}
	for _, name := range []string{a, a + "#2", b + "#3", b + "#4"} {
		if ids["share-"+name] != 1 {
			t.Errorf("%d charts share-%s", ids["share-"+name], name)
		}
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("%d charts with the id %q", n, id)
		}
	}

	// The first client of a closed and another made: the new client and
	// its balancer have one name, held by no other.
	clients[0].Close()
	connectedClient(t, a, WithAdminOf(srv))
	pageTargets(t, srv, 4)
	doc := srv.debugDoc()
	var clientNames, balancerNames []string
	for _, c := range doc.Clients {
		if c.Target == a {
			clientNames = append(clientNames, c.Name)
		}
	}
	for _, bl := range doc.Balancers {
		if bl.Target == a {
			balancerNames = append(balancerNames, bl.Name)
		}
	}
	slices.Sort(clientNames)
	if diff := cmp.Diff([]string{a + "#2", a + "#3"}, clientNames); diff != "" {
		t.Errorf("clients of %s after one was replaced (-want +got):\n%s", a, diff)
	}
	if diff := cmp.Diff(clientNames, balancerNames); diff != "" {
		t.Errorf("balancers of %s named otherwise than their clients (-clients +balancers):\n%s", a, diff)
	}
}

// TestHistoryMarksEventsBetweenSamples: events that began and ended
// between two samples, so that the states of both samples are the same,
// are marked from the event counters: an ejection and its re-admission, a
// demotion restored, a panic over, a failover and the switch back.
func TestHistoryMarksEventsBetweenSamples(t *testing.T) {
	h := newHistory(time.Minute, time.Second)
	doc := func(ejections, demotions, panics, switches int64, panic bool, state balancer.EndpointState) DebugKit {
		d := docOf(balancer.EndpointStats{Addresses: "a", Multiplier: 1, State: state,
			EjectionCount: ejections, DemotionCount: demotions})
		d.Balancers[0].Events = balancer.EventCounts{Ejections: ejections, Demotions: demotions, Panics: panics}
		d.Balancers[0].Panic = panic
		d.Balancers[0].Datacenters = &balancer.DatacenterStats{Active: "dc1", Order: []string{"dc1", "dc2"},
			Switches: map[string]int64{"dc2": switches, "dc1": switches}}
		return d
	}
	for i, d := range []DebugKit{
		doc(0, 0, 0, 0, false, balancer.StateActive),
		doc(1, 1, 1, 0, false, balancer.StateActive),  // ejected and re-admitted, demoted and restored, a panic over
		doc(3, 1, 1, 0, false, balancer.StateEjected), // ejected, re-admitted, ejected again
		doc(3, 1, 3, 1, true, balancer.StateRamping),  // re-admitted; two panics, the second still on; to dc2 and back
		doc(3, 1, 3, 1, false, balancer.StateRamping), // the panic over
	} {
		h.record(start.Add(time.Duration(i)*time.Second), d)
	}
	at := func(i int) int64 { return start.Add(time.Duration(i) * time.Second).UnixMilli() }
	want := []HistoryMark{
		{Time: at(1), Event: "panic"},
		{Time: at(1), Event: "panic-end"},
		{Time: at(1), Event: "ejection", Endpoint: "a"},
		{Time: at(1), Event: "readmission", Endpoint: "a"},
		{Time: at(1), Event: "demotion", Endpoint: "a", Detail: "multiplier 1"},
		{Time: at(2), Event: "ejection", Endpoint: "a", Detail: "2 times"},
		{Time: at(2), Event: "readmission", Endpoint: "a"},
		{Time: at(3), Event: "panic", Detail: "2 times"},
		{Time: at(3), Event: "panic-end"},
		{Time: at(3), Event: "failover", Detail: "dc1, 2 times"},
		{Time: at(3), Event: "readmission", Endpoint: "a"},
		{Time: at(4), Event: "panic-end"},
	}
	if diff := cmp.Diff(want, h.snapshot().Balancers[0].Marks); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
}

// TestHistoryBoundedUnderChurn: balancers, endpoints and clients far more
// numerous than the history keeps, their names changing every few
// samples: the history keeps at most its bounds of each, newest first, and
// its memory stops growing.
func TestHistoryBoundedUnderChurn(t *testing.T) {
	const (
		window    = 30
		targets   = 3 * maxHistoryBalancers / 2
		endpoints = 25 // per target at a time: 1,200 in all
		clients   = 2 * maxHistoryClients
	)
	h := newHistory(window*time.Second, time.Second)
	docAt := func(k int) DebugKit {
		gen := k / 3 // every name changes every 3 samples
		var doc DebugKit
		for i := range targets {
			ts := balancer.TargetStats{Target: fmt.Sprintf("consul:///svc%d-%d", gen%50, i)}
			for j := range endpoints {
				ts.Endpoints = append(ts.Endpoints, balancer.EndpointStats{Addresses: fmt.Sprintf("10.%d.%d.%d:80", gen%50, i, j),
					Calls: int64(k), Multiplier: 1, Weight: 1})
			}
			doc.Balancers = append(doc.Balancers, DebugBalancer{TargetStats: ts})
		}
		for i := range clients {
			doc.Clients = append(doc.Clients, DebugClient{Target: fmt.Sprintf("consul:///c%d-%d", gen%50, i),
				Breakers:  []breaker.State{{Method: "/a", State: "closed"}, {Method: "/b", State: "open"}},
				Throttles: []overload.ThrottleStats{{Target: "x"}}})
		}
		return doc
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	check := func(k int) {
		all := 0
		for name, tr := range h.balancers {
			all += len(tr.endpoints)
			if len(tr.endpoints) > maxHistoryEndpoints {
				t.Fatalf("sample %d: %s keeps %d endpoints", k, name, len(tr.endpoints))
			}
		}
		if len(h.balancers) > maxHistoryBalancers || all > maxHistoryAll || len(h.clients) > maxHistoryClients ||
			len(h.breakers) > 2*maxHistoryClients || len(h.throttles) > maxHistoryClients || len(h.rates) > maxHistoryAll+2 {
			t.Fatalf("sample %d: %d balancers, %d endpoints, %d clients, %d breakers, %d throttles, %d counters",
				k, len(h.balancers), all, len(h.clients), len(h.breakers), len(h.throttles), len(h.rates))
		}
	}
	var filled uint64
	for k := range 8 * window {
		h.record(start.Add(time.Duration(k)*time.Second), docAt(k))
		check(k)
		if k == 3*window {
			filled = heap()
		}
	}
	after := heap()
	if growth := int64(after) - int64(filled); growth > int64(filled)/4 {
		t.Errorf("the heap grew by %d KiB over 5 more windows, from %d KiB", growth/1024, filled/1024)
	}
	// The newest subjects are kept: those of the last sample that found
	// room, here the last generation's clients.
	snap := h.snapshot()
	if len(snap.Clients) != maxHistoryClients || len(snap.Balancers) == 0 {
		t.Errorf("%d clients, %d balancers kept", len(snap.Clients), len(snap.Balancers))
	}
	last := fmt.Sprintf("%d-", (8*window-1)/3%50)
	for _, c := range snap.Clients {
		if !strings.HasPrefix(c.Target, "consul:///c"+last) {
			t.Errorf("client %s kept, want only the last generation's (consul:///c%s...)", c.Target, last)
		}
	}
	for _, b := range snap.Balancers {
		if !strings.HasPrefix(b.Target, "consul:///svc"+last) {
			t.Errorf("balancer %s kept, want only the last generation's (consul:///svc%s...)", b.Target, last)
		}
	}
}

// TestDebugHistoryNothingPerCall: with the sampler running, many calls add
// no sample: the history has one sample per step that passed, however many
// calls were made, and their count comes from the balancer's counters.
func TestDebugHistoryNothingPerCall(t *testing.T) {
	const step = 200 * time.Millisecond
	srv := pageServer(t, "percall", WithDebugHistory(time.Minute, step))
	target := "passthrough:///" + serveOK(t)
	cc := connectedClient(t, target, WithAdminOf(srv))
	pageTargets(t, srv, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		srv.history.run(ctx, srv.debugDoc)
	}()
	const calls = 2000
	for range calls {
		if err := cc.Invoke(t.Context(), "/test.OK/Call", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	// A sample after the last call.
	srv.history.mu.Lock()
	after := srv.history.n + 1
	srv.history.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		srv.history.mu.Lock()
		n := srv.history.n
		srv.history.mu.Unlock()
		if n > after {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sample after the calls within 10s")
		}
	}
	cancel()
	<-done
	elapsed := time.Since(began)
	h := srv.history.snapshot()
	if n, most := len(h.Times), int(elapsed/step)+1; n < 2 || n > most {
		t.Errorf("%d samples in %v at a step of %v for %d calls, want 2 to %d", n, elapsed, step, calls, most)
	}
	var counted float64
	for i, v := range h.Balancers[0].Endpoints[0].CallsPerSecond {
		if i > 0 && !math.IsNaN(v) {
			counted += v * float64(h.Times[i]-h.Times[i-1]) / 1000
		}
	}
	// The first sample may come after the first calls; the times are to
	// the millisecond, the rates to the nanosecond.
	if counted > 1.05*calls || counted < 0.9*calls {
		t.Errorf("the history counts %.1f calls, want %d", counted, calls)
	}
}

// TestDebugKitPageKeysEveryMark: each kind of mark has a style of its own
// on the page (a panic is not drawn as an ejection), and the page's key
// shows every kind of mark and every breaker state.
func TestDebugKitPageKeysEveryMark(t *testing.T) {
	srv := pageServer(t, "keysvc")
	srv.history.record(time.Now(), srv.debugDoc())
	page := adminGet(t, srv, "/debug/kit")
	styles := map[string]string{}
	for _, kind := range markKinds {
		m := regexp.MustCompile(`svg\.chart \.mark-` + regexp.QuoteMeta(kind) + ` line \{([^}]*)\}`).FindStringSubmatch(page)
		if m == nil {
			t.Errorf("no style for the marks of %s", kind)
			continue
		}
		if other, ok := styles[m[1]]; ok {
			t.Errorf("the marks of %s and %s look the same: %s", kind, other, m[1])
		}
		styles[m[1]] = kind
	}
	key := regexp.MustCompile(`(?s)<p [^>]*id="chart-key">.*?</p>`).FindString(page)
	for _, kind := range markKinds {
		if !strings.Contains(key, `data-event="`+kind+`"><svg class="chart key"`) || !strings.Contains(key, `class="mark mark-`+kind+`"`) {
			t.Errorf("the key has no %s mark:\n%s", kind, key)
		}
	}
	for _, st := range breakerStates {
		if !strings.Contains(key, `class="band-`+st+`"`) {
			t.Errorf("the key has no breaker state %s:\n%s", st, key)
		}
	}
	for _, svg := range regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(key, -1) {
		if _, err := chart.Read(svg); err != nil {
			t.Errorf("the key's %s: %v", svg, err)
		}
	}
}

// TestHistoryBalancerReplacedUnderItsName: a client's balancer replaced by
// another (grpc-go rebuilding it) keeps the client's name; the history
// tells no state change across the two (the new one's endpoint is active,
// the old one's was ejected: no re-admission) and takes no rate from the
// old one's counters.
func TestHistoryBalancerReplacedUnderItsName(t *testing.T) {
	h := newHistory(time.Minute, time.Second)
	m := new(balancer.Monitor)
	doc := func(id uint64, state balancer.EndpointState, calls int64) DebugKit {
		d := docOf(balancer.EndpointStats{Addresses: "a", Multiplier: 1, State: state, Calls: calls})
		d.Balancers[0].key = balancerKey{m, id}
		return d
	}
	for i, d := range []DebugKit{
		doc(1, balancer.StateActive, 100),
		doc(1, balancer.StateEjected, 200),
		doc(2, balancer.StateActive, 500), // replaced: its counter is its own
		doc(2, balancer.StateActive, 510),
	} {
		h.record(start.Add(time.Duration(i)*time.Second), d)
	}
	snap := h.snapshot()
	if len(snap.Balancers) != 1 {
		t.Fatalf("%d balancers, want 1", len(snap.Balancers))
	}
	th := snap.Balancers[0]
	var events []string
	for _, m := range th.Marks {
		events = append(events, m.Event)
	}
	if diff := cmp.Diff([]string{"ejection"}, events); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(HistorySeries{nan, 100, nan, 10}, th.Endpoints[0].CallsPerSecond, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("calls/s (-want +got):\n%s", diff)
	}
}

// TestHistoryMarksEndpointsJoiningAndLeaving: an endpoint that comes into
// or goes out of a known target's addresses is marked "joined" or "left";
// the target's first sample marks nothing, and an ejected endpoint, still
// among the addresses, neither left nor joined.
func TestHistoryMarksEndpointsJoiningAndLeaving(t *testing.T) {
	h := newHistory(time.Minute, time.Second)
	ep := func(addr string, state balancer.EndpointState) balancer.EndpointStats {
		return balancer.EndpointStats{Addresses: addr, Multiplier: 1, State: state}
	}
	for i, d := range []DebugKit{
		docOf(ep("a", balancer.StateActive), ep("b", balancer.StateActive)),
		docOf(ep("a", balancer.StateActive), ep("b", balancer.StateEjected)),
		docOf(ep("a", balancer.StateActive)),                                                                // b left
		docOf(ep("a", balancer.StateActive), ep("b", balancer.StateRamping), ep("c", balancer.StateActive)), // b back, c new
	} {
		h.record(start.Add(time.Duration(i)*time.Second), d)
	}
	at := func(i int) int64 { return start.Add(time.Duration(i) * time.Second).UnixMilli() }
	want := []HistoryMark{
		{Time: at(1), Event: "ejection", Endpoint: "b"},
		{Time: at(2), Event: "left", Endpoint: "b"},
		{Time: at(3), Event: "joined", Endpoint: "b"},
		{Time: at(3), Event: "joined", Endpoint: "c"},
	}
	// And out again, two at once (in the order of their addresses), the
	// other staying.
	h.record(start.Add(4*time.Second), docOf(ep("b", balancer.StateActive)))
	want = append(want, HistoryMark{Time: at(4), Event: "left", Endpoint: "a"}, HistoryMark{Time: at(4), Event: "left", Endpoint: "c"})
	if diff := cmp.Diff(want, h.snapshot().Balancers[0].Marks); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
}
