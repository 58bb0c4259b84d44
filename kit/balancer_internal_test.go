package kit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/kittest"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
)

// pageServer is a server whose admin pages are read through its mux, with
// no listener.
func pageServer(t *testing.T, name string, opts ...ServerOption) *Server {
	t.Helper()
	opts = append([]ServerOption{WithServiceName(name), WithAdminAddress(""), WithDrain(0), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	srv, err := NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// adminGet returns the body of the admin page at path.
func adminGet(t *testing.T, srv *Server, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.adminMux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// connectedClient is a kit client of target that has left IDLE, so that
// its balancer exists.
func connectedClient(t *testing.T, target string, opts ...ClientOption) *grpc.ClientConn {
	t.Helper()
	cc, err := NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	cc.Connect()
	return cc
}

// pageTargets returns the targets of the balancers on srv's /debug/kit
// document, once there are want of them.
func pageTargets(t *testing.T, srv *Server, want int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var doc DebugKit
		if err := json.Unmarshal([]byte(adminGet(t, srv, "/debug/kit?format=json")), &doc); err != nil {
			t.Fatal(err)
		}
		var targets []string
		for _, b := range doc.Balancers {
			targets = append(targets, b.Target)
		}
		if len(targets) >= want || time.Now().After(deadline) {
			return targets
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAdminPagesShowTheirOwnClients: two servers in one process, each with
// its own client: each server's /debug/kit and /metrics show the balancer of
// its client only, and a client attached to no server is on neither.
func TestAdminPagesShowTheirOwnClients(t *testing.T) {
	a, b := pageServer(t, "a"), pageServer(t, "b")
	const ta, tb, tn = "passthrough:///127.0.0.1:1", "passthrough:///127.0.0.1:2", "passthrough:///127.0.0.1:3"
	connectedClient(t, ta, WithAdminOf(a))
	connectedClient(t, tb, WithAdminOf(b), WithLogger(slog.New(slog.DiscardHandler)))
	var mon balancer.Monitor
	connectedClient(t, tn, WithBalancerMonitor(&mon))
	for _, tc := range []struct {
		srv    *Server
		want   string
		others []string
	}{{a, ta, []string{tb, tn}}, {b, tb, []string{ta, tn}}} {
		if diff := cmp.Diff([]string{tc.want}, pageTargets(t, tc.srv, 1)); diff != "" {
			t.Errorf("%s: /debug/kit balancers (-want +got):\n%s", tc.srv.service, diff)
		}
		html := adminGet(t, tc.srv, "/debug/kit")
		for _, want := range []string{"<code>" + tc.want + "</code>", `data-event="ejection"`, "</html>"} {
			if !strings.Contains(html, want) {
				t.Errorf("%s: the HTML page lacks %s", tc.srv.service, want)
			}
		}
		metrics := adminGet(t, tc.srv, "/metrics")
		if !strings.Contains(metrics, `target="`+tc.want+`"`) {
			t.Errorf("%s: /metrics lacks its client's balancer %s", tc.srv.service, tc.want)
		}
		for _, other := range tc.others {
			if strings.Contains(html, other) {
				t.Errorf("%s: the HTML page shows %s, not its client", tc.srv.service, other)
			}
			if strings.Contains(metrics, `target="`+other+`"`) {
				t.Errorf("%s: /metrics shows the balancer of %s, not its client", tc.srv.service, other)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(mon.Stats()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := mon.Stats(); len(got) != 1 || got[0].Target != tn || slices.ContainsFunc(got[0].Endpoints, func(e balancer.EndpointStats) bool { return e.Addresses != "127.0.0.1:3" }) {
		t.Errorf("WithBalancerMonitor's Monitor: %+v, want only the balancer of %s", got, tn)
	}
}

// TestClientLoggerReachesBalancer: the events of a client's kit_weighted
// balancer go to the client's WithLogger.
func TestClientLoggerReachesBalancer(t *testing.T) {
	lis := serveDown(t)
	logs := make(kittest.Messages, 100)
	// Without the breaker, so that every call reaches the balancer.
	cc := connectedClient(t, "passthrough:///"+lis.Addr().String(), WithLogger(slog.New(logs)), WithoutLayers(LayerBreaker))
	// The lone endpoint fails calls in a row: after 5 it would be ejected,
	// but never the only one, which the balancer logs. A call that races
	// the endpoint's first READY may be picked before kit_weighted has it
	// in its table and go uncounted, so call until the event comes. It is
	// logged by the balancer's control loop: give a loaded machine (the
	// whole suite under -race on 2 cores) time.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := cc.Invoke(t.Context(), "/test.Down/Call", &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("call = %v, want UNAVAILABLE", err)
		}
		select {
		case msg := <-logs:
			if msg == "kit_weighted: endpoint not ejected: ejection limit reached" {
				return
			}
			continue
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the balancer's event did not reach the client's logger within 20s")
		}
	}
}

// snakeCase is the style of every key of kit's JSON documents.
var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// jsonFields returns the JSON keys of struct type typ with their field
// types, as encoding/json names them (untagged embedded structs
// flattened, untagged fields under their Go name).
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			maps.Copy(out, jsonFields(f.Type))
		case name == "":
			out[f.Name] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

// marshalsItself reports whether typ has its own JSON form (durations,
// times).
func marshalsItself(typ reflect.Type) bool {
	return typ.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(typ).Implements(reflect.TypeFor[json.Marshaler]())
}

// checkTypeStyle reports every field of typ, and of the types it holds,
// whose JSON key is not snake_case, and every time.Duration (a number in
// JSON; kit's durations are duration.Duration, a string).
func checkTypeStyle(t *testing.T, path string, typ reflect.Type, seen map[reflect.Type]bool) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
		typ = typ.Elem()
	}
	switch {
	case typ == reflect.TypeFor[time.Duration]():
		t.Errorf("%s is a time.Duration: a number in JSON, want duration.Duration", path)
		return
	case seen[typ] || marshalsItself(typ) || typ.Kind() != reflect.Struct:
		return
	}
	seen[typ] = true
	for key, ft := range jsonFields(typ) {
		if !snakeCase.MatchString(key) {
			t.Errorf("%s (%v): JSON key %q is not snake_case", path, typ, key)
		}
		checkTypeStyle(t, path+"."+key, ft, seen)
	}
}

// checkJSONStyle checks the decoded JSON v of Go type typ: every key of an
// object made from a struct is snake_case (the keys of maps are data, such
// as method names, and exempt) and every duration is a string.
func checkJSONStyle(t *testing.T, path string, typ reflect.Type, v any) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if v == nil {
		return
	}
	if typ == reflect.TypeFor[duration.Duration]() || typ == reflect.TypeFor[time.Duration]() {
		if _, ok := v.(string); !ok {
			t.Errorf("%s: duration %v is not a string", path, v)
		}
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a type with its own JSON form, such as time.Time
		}
		fields := jsonFields(typ)
		for key, val := range obj {
			if !snakeCase.MatchString(key) {
				t.Errorf("%s: key %q is not snake_case", path, key)
			}
			if ft, ok := fields[key]; ok {
				checkJSONStyle(t, path+"."+key, ft, val)
			} else {
				t.Errorf("%s: key %q matches no field of %v", path, key, typ)
			}
		}
	case reflect.Map:
		for key, val := range v.(map[string]any) {
			checkJSONStyle(t, path+"["+key+"]", typ.Elem(), val)
		}
	case reflect.Slice, reflect.Array:
		for i, val := range v.([]any) {
			checkJSONStyle(t, fmt.Sprintf("%s[%d]", path, i), typ.Elem(), val)
		}
	}
}

// TestDebugKitJSONStyle: the JSON document of /debug/kit has snake_case keys
// at every depth and its durations are strings ("5s"), for every type it
// may hold and for a page showing a configuration, limits, deadlines, a
// client with a breaker and a kit_weighted balancer.
func TestDebugKitJSONStyle(t *testing.T) {
	checkTypeStyle(t, "DebugKit", reflect.TypeFor[DebugKit](), map[reflect.Type]bool{})

	file := filepath.Join(t.TempDir(), "svc.yaml")
	yaml := `ratelimit: {rps: 100, burst: 10, per_method: {"/test.Down/Call": {rps: 5, burst: 1}}}
timeout: {default: 2s, per_method: {"/test.Down/Call": 1500ms}}
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	type svcConfig struct {
		config.Standard `yaml:",inline"`
	}
	store, err := config.Load("stylesvc", svcConfig{config.DefaultStandard()}, config.WithoutConsul(), config.WithFile(file),
		config.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := pageServer(t, "stylesvc", WithConfig(store))
	lis := serveDown(t)
	target := "passthrough:///" + lis.Addr().String()
	cc := connectedClient(t, target, WithAdminOf(srv))
	if err := cc.Invoke(t.Context(), "/test.Down/Call", &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("call = %v, want UNAVAILABLE", err)
	}
	pageTargets(t, srv, 1)

	var doc map[string]any
	if err := json.Unmarshal([]byte(adminGet(t, srv, "/debug/kit?format=json")), &doc); err != nil {
		t.Fatal(err)
	}
	checkJSONStyle(t, "DebugKit", reflect.TypeFor[DebugKit](), doc)
	// The document holds what the check must see.
	for _, key := range []string{"config", "ratelimit", "timeout", "clients", "balancers"} {
		if doc[key] == nil {
			t.Errorf("the document lacks %q: %v", key, doc)
		}
	}
	if timeout, _ := doc["timeout"].(map[string]any); timeout["default"] != "2s" {
		t.Errorf("timeout: %v, want default \"2s\"", doc["timeout"])
	}
	if b, _ := doc["balancers"].([]any); len(b) != 1 || b[0].(map[string]any)["config"].(map[string]any)["window"] != "10s" {
		t.Errorf("balancers: %v, want one with window \"10s\"", doc["balancers"])
	}
	if c, _ := doc["clients"].([]any); len(c) != 1 || c[0].(map[string]any)["breakers"] == nil {
		t.Errorf("clients: %v, want one with a breaker", doc["clients"])
	}
}

// serveDown starts a gRPC server that fails every call with UNAVAILABLE,
// until the test ends; it returns its listener.
func serveDown(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		return status.Error(codes.Unavailable, "down")
	}))
	go down.Serve(lis)
	t.Cleanup(down.Stop)
	return lis
}

// pprof is mounted on the admin listener only when asked: its cmdline page
// shows secrets given as flags.
func TestPprofOptIn(t *testing.T) {
	status := func(srv *Server, path string) int {
		rec := httptest.NewRecorder()
		srv.adminMux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	off := pageServer(t, "off")
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
		if got := status(off, p); got != http.StatusNotFound {
			t.Errorf("default: GET %s = %d, want 404", p, got)
		}
	}
	on := pageServer(t, "on", WithPprof(true))
	if got := status(on, "/debug/pprof/cmdline"); got != http.StatusOK {
		t.Errorf("WithPprof(true): GET /debug/pprof/cmdline = %d, want 200", got)
	}
	if config.DefaultStandard().Server.Pprof {
		t.Error("server.pprof is on by default")
	}
}

// datacenterRegistries is a registry.Discovery with one in-memory registry
// per datacenter ("" the agent's own).
type datacenterRegistries map[string]*memory.Registry

var _ registry.Discovery = datacenterRegistries(nil)

func (d datacenterRegistries) Watch(ctx context.Context, name string, opts ...registry.WatchOption) (registry.Watcher, error) {
	o := registry.NewWatchOptions(opts...)
	r, ok := d[o.Datacenter]
	if !ok {
		return nil, fmt.Errorf("no datacenter %q", o.Datacenter)
	}
	return r.Watch(ctx, name, registry.WithTag(o.Tag))
}

// TestFailoverOnAdminPages: the datacenter a failover target's calls go to
// is on /debug/kit (JSON and HTML) and on /metrics, before and after a
// failover and back.
func TestFailoverOnAdminPages(t *testing.T) {
	srv := pageServer(t, "pages")
	local, dc2 := memory.New(), memory.New()
	d := datacenterRegistries{"": local, "dc2": dc2}
	inst := func(port int) registry.Instance {
		return registry.Instance{ID: fmt.Sprint(port), Name: "svc", Address: "127.0.0.1", Port: port}
	}
	for r, port := range map[*memory.Registry]int{local: 1, dc2: 2} {
		if err := r.Register(t.Context(), inst(port)); err != nil {
			t.Fatal(err)
		}
	}
	connectedClient(t, "consul:///svc?failover=dc2", WithDiscovery(d), WithAdminOf(srv))

	// stage waits until the page's balancer has want as datacenters, then
	// checks the HTML page and the metrics.
	stage := func(want balancer.DatacenterStats, html []string, metrics []string) {
		t.Helper()
		var got *balancer.DatacenterStats
		kittest.WaitFor(t, "the balancer in datacenter "+want.Active, func() bool {
			var doc DebugKit
			if err := json.Unmarshal([]byte(adminGet(t, srv, "/debug/kit?format=json")), &doc); err != nil {
				t.Fatal(err)
			}
			got = nil
			if len(doc.Balancers) == 1 {
				got = doc.Balancers[0].Datacenters
			}
			return got != nil && got.Active == want.Active
		})
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("/debug/kit datacenters (-want +got):\n%s", diff)
		}
		page := adminGet(t, srv, "/debug/kit")
		for _, s := range html {
			if !strings.Contains(page, s) {
				t.Errorf("the HTML page lacks %s", s)
			}
		}
		m := adminGet(t, srv, "/metrics")
		for _, s := range metrics {
			if !regexp.MustCompile(s).MatchString(m) {
				t.Errorf("/metrics lacks %s", s)
			}
		}
	}
	order := []string{"local", "dc2"}
	stage(balancer.DatacenterStats{Active: "local", Order: order, Switches: map[string]int64{}},
		[]string{`data-datacenter="local"`, "datacenter <b>local</b> (order local, dc2)"},
		[]string{`grpckit_balancer_datacenter\{[^}]*datacenter="local"[^}]*\} 1`, `grpckit_balancer_datacenter\{[^}]*datacenter="dc2"[^}]*\} 0`,
			`grpckit_balancer_failovers_total\{[^}]*datacenter="dc2"[^}]*\} 0`})

	if err := local.Deregister(t.Context(), inst(1)); err != nil {
		t.Fatal(err)
	}
	stage(balancer.DatacenterStats{Active: "dc2", Order: order, Failover: true, Switches: map[string]int64{"dc2": 1}},
		[]string{`data-datacenter="dc2"`, `datacenter <b class="failover">dc2</b> (failover; order local, dc2); switches: to dc2 1`},
		[]string{`grpckit_balancer_datacenter\{[^}]*datacenter="dc2"[^}]*target="consul:///svc"[^}]*\} 1`,
			`grpckit_balancer_failovers_total\{[^}]*datacenter="dc2"[^}]*\} 1`})

	if err := local.Register(t.Context(), inst(1)); err != nil {
		t.Fatal(err)
	}
	stage(balancer.DatacenterStats{Active: "local", Order: order, Switches: map[string]int64{"dc2": 1, "local": 1}},
		[]string{"switches: to dc2 1 to local 1"},
		[]string{`grpckit_balancer_datacenter\{[^}]*datacenter="local"[^}]*\} 1`, `grpckit_balancer_failovers_total\{[^}]*datacenter="local"[^}]*\} 1`})
}
