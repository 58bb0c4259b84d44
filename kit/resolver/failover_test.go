package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
)

// inst returns an instance on port port, passing or in warning.
func inst(port int, health registry.Health) registry.Instance {
	return registry.Instance{ID: fmt.Sprint(port), Address: "127.0.0.1", Port: port, Health: health}
}

func pass(port int) registry.Instance { return inst(port, registry.HealthPassing) }
func warn(port int) registry.Instance { return inst(port, registry.HealthWarning) }

// step is one answer given to a feeder of local, dc2, dc3 and what it must
// make the feeder do.
type step struct {
	dc   int                 // 0 local, 1 dc2, 2 dc3
	set  []registry.Instance // the answer, when err is nil
	err  error
	push string // "": no state; else the expected state, see pushed
	fail bool   // the error is reported to grpc
}

var errOutage = errors.New("connection refused")

// TestFeederChoosesTheDatacenter: the feeder of a target with failover=dc2,dc3
// gives grpc the set of the first datacenter with a passing instance, else
// the first with any, else an empty set; its first state waits for the
// datacenters that may be better; it switches back as soon as the local
// one passes again, keeps sets through errors, reports errors only while no
// datacenter has a set, and never pushes an empty set while another
// datacenter has instances.
func TestFeederChoosesTheDatacenter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"switch and switch back", []step{
			{dc: 0, set: []registry.Instance{pass(1)}, push: "local: 1"},
			{dc: 1, set: []registry.Instance{pass(2)}},
			{dc: 2, set: []registry.Instance{}},
			{dc: 0, set: []registry.Instance{}, push: "dc2: 2"},
			{dc: 1, set: []registry.Instance{pass(2), pass(3)}, push: "dc2: 2 3"},
			{dc: 0, err: errOutage},
			{dc: 1, err: errOutage},
			{dc: 0, set: []registry.Instance{pass(1)}, push: "local: 1"},
			{dc: 1, set: []registry.Instance{}},
			{dc: 2, set: []registry.Instance{pass(4)}},
		}},
		{"passing beats warning", []step{
			{dc: 0, set: []registry.Instance{warn(1)}},
			{dc: 1, set: []registry.Instance{warn(2)}},
			{dc: 2, set: []registry.Instance{pass(3)}, push: "dc3: 3"},
			{dc: 1, set: []registry.Instance{warn(2), pass(4)}, push: "dc2: 2 4"},
			{dc: 0, set: []registry.Instance{warn(1), pass(5)}, push: "local: 1 5"},
			{dc: 0, set: []registry.Instance{warn(1)}, push: "dc2: 2 4"},
			{dc: 1, set: []registry.Instance{warn(2)}, push: "dc3: 3"},
			{dc: 2, set: []registry.Instance{}, push: "local: 1"},
		}},
		{"the first state waits for the datacenters ahead", []step{
			{dc: 2, set: []registry.Instance{pass(3)}},
			{dc: 1, set: []registry.Instance{warn(2)}},
			{dc: 0, err: errOutage, push: "dc3: 3"}, // an error is an answer
			{dc: 0, set: []registry.Instance{pass(1)}, push: "local: 1"},
		}},
		{"a first warning set waits for every datacenter", []step{
			{dc: 0, set: []registry.Instance{warn(1)}},
			{dc: 1, set: []registry.Instance{}},
			{dc: 2, err: errOutage, push: "local: 1"},
			{dc: 1, set: []registry.Instance{pass(2)}, push: "dc2: 2"},
		}},
		{"warning anywhere beats empty", []step{
			{dc: 0, set: []registry.Instance{}},
			{dc: 1, set: []registry.Instance{}},
			{dc: 2, set: []registry.Instance{warn(3)}, push: "dc3: 3"},
			{dc: 2, set: []registry.Instance{}, push: "local:"},
		}},
		{"a first empty set waits for every datacenter", []step{
			{dc: 0, set: []registry.Instance{}},
			{dc: 1, err: errOutage},
			{dc: 2, set: []registry.Instance{pass(3)}, push: "dc3: 3"},
			{dc: 2, set: []registry.Instance{}, push: "local:"},
			{dc: 1, set: []registry.Instance{warn(2)}, push: "dc2: 2"},
		}},
		{"errors before any set", []step{
			{dc: 0, err: errOutage, fail: true},
			{dc: 1, err: errOutage, fail: true},
			{dc: 1, set: []registry.Instance{pass(2)}, push: "dc2: 2"},
			{dc: 0, err: errOutage},
			{dc: 2, set: []registry.Instance{}},
			{dc: 0, set: []registry.Instance{pass(1)}, push: "local: 1"},
		}},
		{"errors keep the last set, an empty answer replaces it", []step{
			{dc: 0, set: []registry.Instance{pass(1)}, push: "local: 1"},
			{dc: 0, err: errOutage},
			{dc: 1, err: errOutage},
			{dc: 2, err: errOutage},
			{dc: 0, err: errOutage},
			{dc: 0, set: []registry.Instance{}, push: "local:"}, // no other datacenter has a set
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := newFakeCC()
			f := newFeeder(cc, "user", []string{"local", "dc2", "dc3"}, slog.New(slog.DiscardHandler))
			for i, s := range tc.steps {
				f.take(t.Context(), answer{dc: s.dc, set: s.set, err: s.err})
				got := ""
				select {
				case st := <-cc.states:
					got = pushed(t, st)
				default:
				}
				if got != s.push {
					t.Errorf("step %d (%s %v %v): pushed %q, want %q", i, f.names[s.dc], s.set, s.err, got, s.push)
				}
				select {
				case err := <-cc.errs:
					if !s.fail {
						t.Errorf("step %d: reported %v, want no error reported", i, err)
					} else if !errors.Is(err, errOutage) || !strings.Contains(err.Error(), f.names[s.dc]) {
						t.Errorf("step %d: reported %v, want it to name %s and wrap %v", i, err, f.names[s.dc], errOutage)
					}
				default:
					if s.fail {
						t.Errorf("step %d: no error reported, want one", i)
					}
				}
			}
		})
	}
}

// pushed describes a state as "<active datacenter>: <ports>", and checks
// that it carries the target's order.
func pushed(t *testing.T, s resolver.State) string {
	t.Helper()
	active, order, ok := balancer.DatacentersOf(s)
	if !ok {
		t.Fatalf("state %v carries no datacenters", s)
	}
	if diff := cmp.Diff([]string{"local", "dc2", "dc3"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	out := active + ":"
	for _, ep := range s.Endpoints {
		_, port, _ := strings.Cut(ep.Addresses[0].Addr, ":")
		out += " " + port
	}
	return out
}

// TestFeederLogsSwitches: leaving the local datacenter is a warning, coming
// back information.
func TestFeederLogsSwitches(t *testing.T) {
	var buf bytes.Buffer
	f := newFeeder(newFakeCC(), "user", []string{"dc1", "dc2"}, slog.New(slog.NewTextHandler(&buf, nil)))
	for _, a := range []answer{
		{dc: 0, set: []registry.Instance{pass(1)}},
		{dc: 1, set: []registry.Instance{pass(2)}},
		{dc: 0, set: []registry.Instance{}},
		{dc: 0, set: []registry.Instance{pass(1)}},
	} {
		f.take(t.Context(), a)
	}
	var got []string
	for line := range strings.Lines(buf.String()) {
		level, _, _ := strings.Cut(strings.SplitN(line, "level=", 2)[1], " ")
		_, msg, _ := strings.Cut(line, "msg=")
		msg, _, _ = strings.Cut(msg, `" `)
		got = append(got, level+" "+strings.Trim(msg, `"`))
	}
	want := []string{"WARN consul resolver: datacenter failover", "INFO consul resolver: back in the local datacenter"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs (-want +got):\n%s\n%s", diff, buf.String())
	}
	if !strings.Contains(buf.String(), "from=dc1 to=dc2") {
		t.Errorf("the failover line does not name both datacenters:\n%s", buf.String())
	}
}

// dcDiscovery is a registry.Discovery with one scripted watcher per
// datacenter ("" the agent's own); it records the datacenters watched.
type dcDiscovery struct {
	watchers map[string]*scriptWatcher
	watched  chan string
}

var _ registry.Discovery = (*dcDiscovery)(nil)

func newDCDiscovery(dcs ...string) *dcDiscovery {
	d := &dcDiscovery{watchers: map[string]*scriptWatcher{}, watched: make(chan string, len(dcs))}
	for _, dc := range dcs {
		d.watchers[dc] = &scriptWatcher{results: make(chan result), stopped: make(chan struct{}), taken: make(chan struct{}, 10)}
	}
	return d
}

func (d *dcDiscovery) Watch(_ context.Context, _ string, opts ...registry.WatchOption) (registry.Watcher, error) {
	o := registry.NewWatchOptions(opts...)
	w, ok := d.watchers[o.Datacenter]
	if !ok {
		return nil, fmt.Errorf("no datacenter %q", o.Datacenter)
	}
	if o.Tag != "blue" {
		return nil, fmt.Errorf("tag %q, want the target's", o.Tag)
	}
	d.watched <- o.Datacenter
	return w, nil
}

// TestFailoverResolver: a failover target watches each of its datacenters
// with the target's tag, follows them through grpc (the failover and the
// way back), and Close stops every watch.
func TestFailoverResolver(t *testing.T) {
	for _, tc := range []struct {
		target string
		dcs    []string // the datacenters watched, in order ("" the agent's)
		names  []string // as the balancer sees them
	}{
		{"consul:///user?tag=blue&failover=dc2,dc3", []string{"", "dc2", "dc3"}, []string{"local", "dc2", "dc3"}},
		{"consul:///user?tag=blue&dc=dc2&failover=dc1", []string{"dc2", "dc1"}, []string{"dc2", "dc1"}},
	} {
		t.Run(tc.target, func(t *testing.T) {
			d := newDCDiscovery(tc.dcs...)
			cc := newFakeCC()
			u := parseURL(t, tc.target)
			r, err := NewBuilder(d).Build(resolver.Target{URL: u}, cc, resolver.BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					r.Close()
				}
			}()
			for _, dc := range tc.dcs {
				if got := <-d.watched; got != dc {
					t.Fatalf("watched datacenter %q, want %q", got, dc)
				}
			}
			local, other := d.watchers[tc.dcs[0]], d.watchers[tc.dcs[1]]
			give(t, local, result{set: []registry.Instance{pass(1)}})
			expect(t, cc, tc.names[0], tc.names, "127.0.0.1:1")
			give(t, other, result{set: []registry.Instance{pass(2)}})
			give(t, local, result{set: []registry.Instance{}})
			expect(t, cc, tc.names[1], tc.names, "127.0.0.1:2")
			give(t, local, result{err: errOutage})
			give(t, local, result{set: []registry.Instance{pass(1)}})
			expect(t, cc, tc.names[0], tc.names, "127.0.0.1:1")
			select {
			case s := <-cc.states:
				t.Errorf("unexpected state %v", s)
			case err := <-cc.errs:
				t.Errorf("unexpected error %v", err)
			default:
			}

			r.Close()
			closed = true
			for _, dc := range tc.dcs {
				select {
				case <-d.watchers[dc].stopped:
				default:
					t.Errorf("the watch of datacenter %q is not stopped after Close", dc)
				}
			}
		})
	}
}

// give hands w's watch one result and returns once the resolver took it
// (its feeder handles the answers of all watches one at a time, so a
// result given next is handled after this one).
func give(t *testing.T, w *scriptWatcher, r result) {
	t.Helper()
	w.results <- r
	select {
	case <-w.taken:
	case <-time.After(5 * time.Second):
		t.Fatal("the resolver did not take the result within 5s")
	}
}

// expect receives a state and checks its datacenters and addresses.
func expect(t *testing.T, cc *fakeCC, active string, order []string, addrs ...string) {
	t.Helper()
	s := recv(t, cc.states)
	gotActive, gotOrder, _ := balancer.DatacentersOf(s)
	var got []string
	for _, ep := range s.Endpoints {
		got = append(got, ep.Addresses[0].Addr)
	}
	if diff := cmp.Diff([]any{active, order, addrs}, []any{gotActive, gotOrder, got}); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}

// TestNoDatacentersWithoutFailover: a target without a failover list gives
// states without datacenters, as before.
func TestNoDatacentersWithoutFailover(t *testing.T) {
	reg := memory.New()
	cc := build(t, reg, "consul:///user")
	if _, _, ok := balancer.DatacentersOf(recv(t, cc.states)); ok {
		t.Error("the state of a target without failover carries datacenters")
	}
}

// TestFailoverBuildErrors: a discovery refusing one datacenter's watch fails
// Build, naming it, and stops the watches already started.
func TestFailoverBuildErrors(t *testing.T) {
	d := newDCDiscovery("")
	u := parseURL(t, "consul:///user?tag=blue&failover=dc2")
	_, err := NewBuilder(d).Build(resolver.Target{URL: u}, newFakeCC(), resolver.BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "datacenter dc2") {
		t.Errorf("Build = %v, want an error naming dc2", err)
	}
	select {
	case <-d.watchers[""].stopped:
	default:
		t.Error("the local watch is not stopped after Build failed")
	}
	if _, err := NewBuilder(memory.New()).Build(resolver.Target{URL: u}, newFakeCC(), resolver.BuildOptions{}); !errors.Is(err, memory.ErrDatacenter) {
		t.Errorf("Build over the memory registry = %v, want %v", err, memory.ErrDatacenter)
	}
}

func parseURL(t *testing.T, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}
