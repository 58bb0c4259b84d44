package resolver

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in      string
		service string
		agent   string
		opts    registry.WatchOptions
		dcs     []string // Datacenters, when not just the local one
		wantErr string   // in the error
	}{
		{in: "consul:///user", service: "user"},
		{in: "consul://10.0.0.1:8500/user", service: "user", agent: "10.0.0.1:8500"},
		{in: "consul:///user?tag=v2&dc=eu1", service: "user", opts: registry.WatchOptions{Tag: "v2", Datacenter: "eu1"}},
		{in: "consul:///user?failover=dc2,dc3", service: "user", dcs: []string{"local", "dc2", "dc3"}},
		{in: "consul:///user?dc=dc2&failover=dc1&tag=v2", service: "user", opts: registry.WatchOptions{Tag: "v2", Datacenter: "dc2"}, dcs: []string{"dc2", "dc1"}},
		{in: "consul:///", wantErr: "want consul:///<service>"},
		{in: "consul:///a/b", wantErr: "want consul:///<service>"},
		{in: "consul:///user?tga=v2", wantErr: `unknown parameter "tga"`},
		{in: "consul:///user?tag=a&tag=b", wantErr: "given 2 times"},
		{in: "consul:///user?tag=%zz", wantErr: "invalid URL escape"},
		{in: "consul:///user?failover=", wantErr: "empty datacenter name at position 1"},
		{in: "consul:///user?failover=dc2,,dc3", wantErr: "empty datacenter name at position 2"},
		{in: "consul:///user?failover=dc2,", wantErr: "empty datacenter name at position 2"},
		{in: "consul:///user?failover=dc2,dc3,dc2", wantErr: `datacenter "dc2" listed twice`},
		{in: "consul:///user?dc=dc2&failover=dc1,dc2", wantErr: `datacenter "dc2" is the local one`},
		{in: "consul:///user?failover=dc%202", wantErr: `datacenter "dc 2": want letters`},
		{in: "consul:///user?failover=a&failover=b", wantErr: "given 2 times"},
		{in: "consul:///user?failover=local", wantErr: `"local" names the agent's own datacenter`},
		{in: "consul:///user?dc=dc1&failover=local", service: "user", opts: registry.WatchOptions{Datacenter: "dc1"}, dcs: []string{"dc1", "local"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			if err != nil {
				u = &url.URL{Scheme: "consul", Path: "/user", RawQuery: "tag=%zz"}
			}
			got, err := ParseTarget(*u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTarget(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Service != tc.service || got.Agent != tc.agent {
				t.Errorf("service, agent = %q, %q; want %q, %q", got.Service, got.Agent, tc.service, tc.agent)
			}
			if diff := cmp.Diff(tc.opts, registry.NewWatchOptions(got.Options...)); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			wantDCs := tc.dcs
			if wantDCs == nil {
				wantDCs = []string{LocalDatacenter}
				if tc.opts.Datacenter != "" {
					wantDCs = []string{tc.opts.Datacenter}
				}
			}
			if diff := cmp.Diff(wantDCs, got.Datacenters()); diff != "" {
				t.Errorf("datacenters (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStateCarriesWeights(t *testing.T) {
	set := []registry.Instance{
		{ID: "a", Address: "10.0.0.1", Port: 1, Weights: registry.Weights{Passing: 5, Warning: 2}, Health: registry.HealthPassing},
		{ID: "b", Address: "10.0.0.2", Port: 2, Weights: registry.Weights{Passing: 5, Warning: 2}, Health: registry.HealthWarning},
		{ID: "c", Address: "::1", Port: 3, Meta: map[string]string{"weight": "40"}, Weights: registry.Weights{Passing: 5}},
		{ID: "d", Address: "10.0.0.4", Port: 4},
		{ID: "e", Address: "10.0.0.5", Port: 5, Meta: map[string]string{"weight": "-3"}, Weights: registry.Weights{Passing: 7}},
	}
	type ep struct {
		Addr   string
		Weight uint32
	}
	var got []ep
	for _, e := range State(set).Endpoints {
		got = append(got, ep{e.Addresses[0].Addr, weight.FromEndpoint(e).Weight})
	}
	want := []ep{{"10.0.0.1:1", 5}, {"10.0.0.2:2", 2}, {"[::1]:3", 40}, {"10.0.0.4:4", 1}, {"10.0.0.5:5", 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

// fakeCC records what a resolver tells grpc.
type fakeCC struct {
	resolver.ClientConn
	states chan resolver.State
	errs   chan error
}

func newFakeCC() *fakeCC {
	return &fakeCC{states: make(chan resolver.State, 10), errs: make(chan error, 10)}
}

func (f *fakeCC) UpdateState(s resolver.State) error { f.states <- s; return nil }
func (f *fakeCC) ReportError(err error)              { f.errs <- err }
func (f *fakeCC) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

// scriptWatcher returns scripted results from Next; its results channel is fed by the test.
type scriptWatcher struct {
	results chan result
	once    sync.Once
	stopped chan struct{}
	taken   chan struct{} // if not nil, receives when Next is called again after a result
	nexts   int           // calls of Next; only Next's goroutine uses it
}

type result struct {
	set []registry.Instance
	err error
}

var _ registry.Discovery = (*scriptWatcher)(nil)

func (w *scriptWatcher) Watch(context.Context, string, ...registry.WatchOption) (registry.Watcher, error) {
	return w, nil
}

func (w *scriptWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	if w.taken != nil && w.nexts > 0 {
		w.taken <- struct{}{}
	}
	w.nexts++
	select {
	case r := <-w.results:
		return r.set, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.stopped:
		return nil, registry.ErrWatcherStopped
	}
}

func (w *scriptWatcher) Stop() { w.once.Do(func() { close(w.stopped) }) }

func build(t *testing.T, d registry.Discovery, target string) *fakeCC {
	t.Helper()
	cc := newFakeCC()
	u, _ := url.Parse(target)
	r, err := NewBuilder(d).Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return cc
}

func TestResolverErrorsBeforeAndAfterFirstSet(t *testing.T) {
	w := &scriptWatcher{results: make(chan result), stopped: make(chan struct{})}
	cc := build(t, w, "consul:///user")
	outage := errors.New("connection refused")
	a := registry.Instance{ID: "a", Address: "127.0.0.1", Port: 1}

	// Never answered: the error reaches grpc, so calls fail instead of hanging.
	w.results <- result{err: outage}
	if err := recvErr(t, cc.errs); !errors.Is(err, outage) {
		t.Errorf("reported %v, want it to wrap %v", err, outage)
	}
	w.results <- result{set: []registry.Instance{a}}
	if s := recv(t, cc.states); len(s.Endpoints) != 1 {
		t.Errorf("state %v, want one endpoint", s)
	}
	// Later outages keep the last good set: nothing is reported or updated.
	w.results <- result{err: outage}
	w.results <- result{set: []registry.Instance{}} // service truly gone
	if s := recv(t, cc.states); len(s.Endpoints) != 0 {
		t.Errorf("state %v, want no endpoints", s)
	}
	select {
	case err := <-cc.errs:
		t.Errorf("error reported after a good set: %v", err)
	default:
	}
}

func TestResolverFollowsMemoryRegistry(t *testing.T) {
	reg := memory.New()
	cc := build(t, reg, "consul:///user?tag=blue")
	if s := recv(t, cc.states); len(s.Endpoints) != 0 {
		t.Fatalf("first state %v, want empty", s)
	}
	ctx := t.Context()
	reg.Register(ctx, registry.Instance{ID: "g", Name: "user", Address: "127.0.0.1", Port: 1, Tags: []string{"green"}})
	reg.Register(ctx, registry.Instance{ID: "b", Name: "user", Address: "127.0.0.1", Port: 2, Tags: []string{"blue"}})
	s := recv(t, cc.states)
	if len(s.Endpoints) != 1 || s.Endpoints[0].Addresses[0].Addr != "127.0.0.1:2" {
		t.Errorf("state %v, want only the blue instance", s)
	}
}

func TestBuildRejectsBadTargets(t *testing.T) {
	for _, target := range []string{"consul:///", "consul://agent:8500/user"} {
		u, _ := url.Parse(target)
		if _, err := NewBuilder(memory.New()).Build(resolver.Target{URL: *u}, newFakeCC(), resolver.BuildOptions{}); err == nil {
			t.Errorf("Build(%q) succeeded, want an error", target)
		}
	}
}

func recv(t *testing.T, c chan resolver.State) resolver.State {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no resolver state within 5s")
	}
	return resolver.State{}
}

func recvErr(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no resolver error within 5s")
	}
	return nil
}
