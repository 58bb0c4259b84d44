package balancer_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	kitbalancer "github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/internal/lbtest"
)

// The Monitor and the logger a balancer uses are those of the resolver
// state: it reports to the Monitor of the latest state, leaves it when a
// state carries another or on Close, and logs to the state's logger.
func TestMonitorAndLoggerComeWithTheResolverState(t *testing.T) {
	var first, second kitbalancer.Monitor
	logs := make(kittest.Messages, 100)
	state := func(m *kitbalancer.Monitor) balancer.ClientConnState {
		s := resolver.State{Endpoints: lbtest.Endpoints(2)}
		if m != nil {
			s = kitbalancer.SetMonitor(s, m)
		}
		return balancer.ClientConnState{ResolverState: kitbalancer.SetLogger(s, slog.New(logs))}
	}
	cc := &lbtest.ClientConn{}
	bal := balancer.Get(kitbalancer.Name).Build(cc, balancer.BuildOptions{})
	closed := false
	defer func() {
		if !closed {
			bal.Close()
		}
	}()
	if err := bal.UpdateClientConnState(state(&first)); err != nil {
		t.Fatal(err)
	}
	cc.Flush()
	if got := first.Stats(); len(got) != 1 || len(got[0].Endpoints) != 2 {
		t.Fatalf("first.Stats() = %+v, want the balancer and its 2 endpoints", got)
	}

	// Five failures in a row on ep0 eject it; the event goes to the logger.
	p, _ := cc.Picker()
	for failed := 0; failed < 5; {
		res, err := p.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if res.SubConn.(*lbtest.SubConn).Addr != "ep0" {
			res.Done(balancer.DoneInfo{BytesSent: true, BytesReceived: true})
			continue
		}
		res.Done(balancer.DoneInfo{Err: status.Error(codes.Unavailable, "down"), BytesSent: true})
		failed++
	}
	timeout := time.After(5 * time.Second)
	for msg := ""; msg != "kit_weighted: endpoint ejected"; {
		select {
		case msg = <-logs:
		case <-timeout:
			t.Fatal("no ejection logged to the state's logger within 5s")
		}
	}

	if err := bal.UpdateClientConnState(state(&second)); err != nil {
		t.Fatal(err)
	}
	if got := first.Stats(); len(got) != 0 {
		t.Errorf("first.Stats() = %+v after the state changed Monitor, want none", got)
	}
	if got := second.Stats(); len(got) != 1 || got[0].Events.Ejections != 1 || got[0].ID != 1 {
		t.Errorf("second.Stats() = %+v, want the balancer with its ejection, ID 1", got)
	} else {
		for _, ep := range got[0].Endpoints {
			if want := int64(map[string]int{"ep0": 1}[ep.Addresses]); ep.EjectionCount != want {
				t.Errorf("%s: ejection count %d, want %d", ep.Addresses, ep.EjectionCount, want)
			}
		}
	}
	if err := bal.UpdateClientConnState(state(nil)); err != nil {
		t.Fatal(err)
	}
	if got := second.Stats(); len(got) != 0 {
		t.Errorf("second.Stats() = %+v after a state without Monitor, want none", got)
	}
	if err := bal.UpdateClientConnState(state(&second)); err != nil {
		t.Fatal(err)
	}
	// Attached again: a new number, not the one it had.
	if got := second.Stats(); len(got) != 1 || got[0].ID != 2 {
		t.Errorf("second.Stats() = %+v attached again, want ID 2", got)
	}
	bal.Close()
	closed = true
	if got := second.Stats(); len(got) != 0 {
		t.Errorf("second.Stats() = %+v after Close, want none", got)
	}
}

// The datacenters of a failover target come with the resolver state: the
// balancer reports the active one and the order, counts each change of
// active datacenter by the datacenter it changed to (the first state's is
// none), and forgets them with a state that carries none.
func TestDatacentersComeWithTheResolverState(t *testing.T) {
	var m kitbalancer.Monitor
	order := []string{"dc1", "dc2", "dc3"}
	cc := &lbtest.ClientConn{}
	bal := balancer.Get(kitbalancer.Name).Build(cc, balancer.BuildOptions{})
	defer bal.Close()
	update := func(active string) {
		t.Helper()
		s := kitbalancer.SetMonitor(resolver.State{Endpoints: lbtest.Endpoints(1)}, &m)
		if active != "" {
			s = kitbalancer.SetDatacenters(s, active, order)
		}
		if err := bal.UpdateClientConnState(balancer.ClientConnState{ResolverState: s}); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
	}
	stats := func() *kitbalancer.DatacenterStats {
		t.Helper()
		st := m.Stats()
		if len(st) != 1 {
			t.Fatalf("Stats() = %+v, want one balancer", st)
		}
		return st[0].Datacenters
	}
	for _, step := range []struct {
		active string
		want   *kitbalancer.DatacenterStats // nil: none
	}{
		{"dc1", &kitbalancer.DatacenterStats{Active: "dc1", Order: order, Switches: map[string]int64{}}},
		{"dc1", &kitbalancer.DatacenterStats{Active: "dc1", Order: order, Switches: map[string]int64{}}},
		{"dc2", &kitbalancer.DatacenterStats{Active: "dc2", Order: order, Failover: true, Switches: map[string]int64{"dc2": 1}}},
		{"dc3", &kitbalancer.DatacenterStats{Active: "dc3", Order: order, Failover: true, Switches: map[string]int64{"dc2": 1, "dc3": 1}}},
		{"dc1", &kitbalancer.DatacenterStats{Active: "dc1", Order: order, Switches: map[string]int64{"dc1": 1, "dc2": 1, "dc3": 1}}},
		{"dc2", &kitbalancer.DatacenterStats{Active: "dc2", Order: order, Failover: true, Switches: map[string]int64{"dc1": 1, "dc2": 2, "dc3": 1}}},
		{"", nil},
	} {
		update(step.active)
		if diff := cmp.Diff(step.want, stats()); diff != "" {
			t.Errorf("after a state of %q: datacenters (-want +got):\n%s", step.active, diff)
		}
	}
	// The setter copies the order; so do the getter and the stats.
	s := kitbalancer.SetDatacenters(resolver.State{}, "dc1", order)
	order[0] = "changed"
	if _, got, _ := kitbalancer.DatacentersOf(s); got[0] != "dc1" {
		t.Errorf("DatacentersOf = %q after the caller changed its slice, want a copy", got)
	}
}
