package consul

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul/internal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// answer is one scripted reply of the fake Consul.
type answer struct {
	status      int // 0 means 200
	index       uint64
	body        string // raw JSON; empty with status 200 means "[]"
	aclFiltered bool   // set X-Consul-Results-Filtered-By-ACLs
}

// fakeConsul serves /v1/health/service/ from a script. Each request takes the
// next answer; with the script exhausted a request blocks like a long poll
// until the client goes away, or, when it asks to wait less than a minute,
// until that wait is over and then repeats the last answer (as Consul does).
// The query of every request is sent on queries.
type fakeConsul struct {
	t       *testing.T
	srv     *httptest.Server
	queries chan map[string]string

	mu     sync.Mutex
	script []answer // guarded by mu
	last   answer   // guarded by mu
}

func newFakeConsul(t *testing.T, script ...answer) *fakeConsul {
	f := &fakeConsul{t: t, script: script, queries: make(chan map[string]string, 100)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeConsul) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/acl/token/self" { // a Consul without ACLs, as Consul answers it
		http.Error(w, "ACL support disabled", http.StatusUnauthorized)
		return
	}
	q := map[string]string{"path": r.URL.Path, "index": "0"} // the client omits index=0
	for k := range r.URL.Query() {
		q[k] = r.URL.Query().Get(k)
	}
	f.queries <- q
	f.mu.Lock()
	if len(f.script) == 0 {
		a := f.last
		f.mu.Unlock()
		wait, err := time.ParseDuration(q["wait"])
		if err != nil || wait >= time.Minute {
			<-r.Context().Done()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(wait):
		}
		f.mu.Lock()
		f.script = append(f.script, a)
		f.mu.Unlock()
		f.serveNext(w)
		return
	}
	f.mu.Unlock()
	f.serveNext(w)
}

// serveNext answers with the next answer of the script.
func (f *fakeConsul) serveNext(w http.ResponseWriter) {
	f.mu.Lock()
	a := f.script[0]
	f.script = f.script[1:]
	f.last = a
	f.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(a.index, 10))
	w.Header().Set("X-Consul-LastContact", "0") // as real Consul; the client parses no further without it
	w.Header().Set("X-Consul-KnownLeader", "true")
	if a.aclFiltered {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
	if a.status != 0 {
		http.Error(w, "injected failure", a.status)
		return
	}
	if a.body == "" {
		a.body = "[]"
	}
	w.Write([]byte(a.body))
}

// registry returns a Registry on the fake whose sleeps are recorded and skipped.
func (f *fakeConsul) registry(opts ...Option) (*Registry, *[]time.Duration) {
	cfg := api.DefaultConfig()
	cfg.Address = f.srv.Listener.Addr().String()
	client, err := api.NewClient(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(cfg.Transport.CloseIdleConnections)
	var mu sync.Mutex
	slept := new([]time.Duration)
	prev := internal.Sleep
	f.t.Cleanup(func() { internal.Sleep = prev })
	internal.Sleep = func(ctx context.Context, d time.Duration) error {
		if d > 0 {
			mu.Lock()
			*slept = append(*slept, d)
			mu.Unlock()
		}
		return ctx.Err()
	}
	return New(client, append([]Option{WithMinInterval(0)}, opts...)...), slept
}

// indexes drains the recorded queries and returns their index parameters.
func (f *fakeConsul) indexes() []string {
	var out []string
	for {
		select {
		case q := <-f.queries:
			out = append(out, q["index"])
		default:
			return out
		}
	}
}

type entrySpec struct {
	id     string
	port   int
	status string // check status
	weight int
}

func entries(specs ...entrySpec) string {
	var es []*api.ServiceEntry
	for _, s := range specs {
		es = append(es, &api.ServiceEntry{
			Node: &api.Node{Node: "n1", Address: "10.0.0.1"},
			Service: &api.AgentService{ID: s.id, Service: "user", Address: "127.0.0.1", Port: s.port,
				Weights: api.AgentWeights{Passing: max(s.weight, 1), Warning: 1}},
			Checks: api.HealthChecks{
				{CheckID: "serfHealth", Status: api.HealthPassing},
				{CheckID: "service:" + s.id, Status: s.status},
			},
		})
	}
	b, _ := json.Marshal(es)
	return string(b)
}

func inst(id string, port int, h registry.Health) registry.Instance {
	return registry.Instance{ID: id, Name: "user", Address: "127.0.0.1", Port: port,
		Weights: registry.Weights{Passing: 1, Warning: 1}, Health: h}
}

func next(t *testing.T, w registry.Watcher) []registry.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	set, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return set
}

func watch(t *testing.T, r *Registry, opts ...registry.WatchOption) registry.Watcher {
	t.Helper()
	w, err := r.Watch(t.Context(), "user", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

func TestWatchIndexGoesBackwards(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 10, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 5, body: entries(entrySpec{"a", 1, api.HealthPassing, 1}, entrySpec{"b", 2, api.HealthPassing, 1})},
		answer{index: 6, body: entries(entrySpec{"c", 3, api.HealthPassing, 1})},
	)
	r, _ := f.registry()
	w := watch(t, r)
	if diff := cmp.Diff([]registry.Instance{inst("a", 1, registry.HealthPassing)}, next(t, w)); diff != "" {
		t.Errorf("first set (-want +got):\n%s", diff)
	}
	if got := next(t, w); len(got) != 2 {
		t.Errorf("second set = %v, want a and b", got)
	}
	if got := next(t, w); len(got) != 1 || got[0].ID != "c" {
		t.Errorf("third set = %v, want c", got)
	}
	if diff := cmp.Diff([]string{"0", "10", "0"}, f.indexes()); diff != "" {
		t.Errorf("indexes sent (-want +got):\n%s", diff)
	}
}

func TestWatchIndexZeroNeverSentAgain(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 0, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 0, body: entries(entrySpec{"b", 2, api.HealthPassing, 1})},
	)
	r, _ := f.registry()
	w := watch(t, r)
	next(t, w)
	next(t, w)
	// The third query blocks on the exhausted script; its index must be 1.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := w.Next(ctx); done <- err }()
	var got []string
	for len(got) < 3 {
		select {
		case q := <-f.queries:
			got = append(got, q["index"])
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d queries seen", len(got))
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]string{"0", "1", "1"}, got); diff != "" {
		t.Errorf("indexes sent (-want +got):\n%s", diff)
	}
}

func TestWatchIdenticalAnswersNotEmitted(t *testing.T) {
	a := entries(entrySpec{"a", 1, api.HealthPassing, 1})
	f := newFakeConsul(t,
		answer{index: 10, body: a},
		answer{index: 11, body: a},
		answer{index: 12, body: a},
		answer{index: 13, body: entries(entrySpec{"a", 1, api.HealthPassing, 1}, entrySpec{"b", 2, api.HealthPassing, 1})},
	)
	r, _ := f.registry()
	w := watch(t, r)
	next(t, w)
	if got := next(t, w); len(got) != 2 {
		t.Errorf("second emitted set = %v, want the a+b answer", got)
	}
	if n := len(f.indexes()); n != 4 {
		t.Errorf("%d queries, want 4 (two identical answers swallowed)", n)
	}
}

func TestWatchErrorsBackOffAndRecover(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 10, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{status: http.StatusInternalServerError},
		answer{status: http.StatusInternalServerError},
		answer{index: 11, body: "{not json"},
		answer{status: http.StatusInternalServerError},
		answer{index: 12, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 13, body: entries(entrySpec{"b", 2, api.HealthPassing, 1})},
	)
	base, ceiling := 10*time.Millisecond, 25*time.Millisecond
	r, slept := f.registry(WithBackoff(base, ceiling))
	w := watch(t, r)
	next(t, w)

	// The first failure of an outage is reported, once.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := w.Next(ctx); err == nil {
		t.Fatal("Next during an outage returned no error")
	}
	// The next call retries through the rest of the outage, swallows the answer
	// identical to the last set and returns the first changed one.
	if got := next(t, w); len(got) != 1 || got[0].ID != "b" {
		t.Errorf("set after the outage = %v, want b", got)
	}
	want := []time.Duration{base, 2 * base, ceiling, ceiling}
	if len(*slept) != len(want) {
		t.Fatalf("backoff sleeps = %v, want about %v", *slept, want)
	}
	for i, d := range *slept {
		if lo, hi := want[i]*8/10, want[i]*12/10; d < lo || d > hi {
			t.Errorf("sleep %d = %v, want %v ±20%%", i, d, want[i])
		}
	}
}

func TestWatchRateLimited(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 1, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 2, body: entries(entrySpec{"b", 1, api.HealthPassing, 1})},
		answer{index: 3, body: entries(entrySpec{"c", 1, api.HealthPassing, 1})},
	)
	r, slept := f.registry(WithMinInterval(time.Hour))
	w := watch(t, r)
	for range 3 {
		next(t, w)
	}
	// Answers came back at once, so each query after the first waited for
	// nearly the whole minimum interval.
	if len(*slept) != 2 {
		t.Fatalf("pauses = %v, want 2", *slept)
	}
	for _, d := range *slept {
		if d < 59*time.Minute {
			t.Errorf("pause %v, want close to 1h", d)
		}
	}
}

func TestWatchServiceAbsentEmitsEmptySet(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 3, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 4, body: "[]"},
	)
	r, _ := f.registry()
	w := watch(t, r)
	next(t, w)
	if got := next(t, w); got == nil || len(got) != 0 {
		t.Errorf("set = %#v, want an empty, non-nil set", got)
	}
}

func TestWatchHealthFiltering(t *testing.T) {
	body := `[
	 {"Service":{"ID":"pass","Service":"user","Address":"127.0.0.1","Port":1,"Weights":{"Passing":5,"Warning":2}},
	  "Checks":[{"CheckID":"serfHealth","Status":"passing"},{"CheckID":"c","Status":"passing"}]},
	 {"Service":{"ID":"warn","Service":"user","Address":"127.0.0.1","Port":2,"Weights":{"Passing":5,"Warning":2}},
	  "Checks":[{"CheckID":"c","Status":"warning"}, null]},
	 {"Service":{"ID":"crit","Service":"user","Address":"127.0.0.1","Port":3},"Checks":[{"CheckID":"c","Status":"critical"}]},
	 {"Service":{"ID":"maint","Service":"user","Address":"127.0.0.1","Port":4},"Checks":[{"CheckID":"_service_maintenance:maint","Status":"passing"}]},
	 {"Service":{"ID":"odd","Service":"user","Address":"127.0.0.1","Port":5},"Checks":[{"CheckID":"c","Status":"bogus"}]},
	 {"Service":{"ID":"noport","Service":"user","Address":"127.0.0.1","Port":0},"Checks":[]},
	 {"Service":{"ID":"bigport","Service":"user","Address":"127.0.0.1","Port":70000},"Checks":[]},
	 {"Node":{"Address":"10.1.1.1"},"Service":{"ID":"nodeaddr","Service":"user","Port":6},"Checks":[]},
	 {"Node":{"Address":"10.1.1.1"}},
	 null
	]`
	f := newFakeConsul(t, answer{index: 3, body: body})
	r, _ := f.registry()
	w := watch(t, r, registry.WithTag("v2"), registry.WithDatacenter("dc9"))
	want := []registry.Instance{
		{ID: "nodeaddr", Name: "user", Address: "10.1.1.1", Port: 6, Health: registry.HealthPassing},
		{ID: "pass", Name: "user", Address: "127.0.0.1", Port: 1, Weights: registry.Weights{Passing: 5, Warning: 2}, Health: registry.HealthPassing},
		{ID: "warn", Name: "user", Address: "127.0.0.1", Port: 2, Weights: registry.Weights{Passing: 5, Warning: 2}, Health: registry.HealthWarning},
	}
	if diff := cmp.Diff(want, next(t, w)); diff != "" {
		t.Errorf("healthy set (-want +got):\n%s", diff)
	}
	q := <-f.queries
	if q["path"] != "/v1/health/service/user" || q["tag"] != "v2" || q["dc"] != "dc9" {
		t.Errorf("query = %v, want path /v1/health/service/user, tag v2, dc dc9", q)
	}
	if got := want[2].Weight(); got != 2 {
		t.Errorf("warning instance weight = %d, want its Warning weight 2", got)
	}
}

func TestWatchStopCancelsLongPoll(t *testing.T) {
	f := newFakeConsul(t) // every query blocks
	r, _ := f.registry()
	w, err := r.Watch(t.Context(), "user")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := w.Next(context.Background()); done <- err }()
	<-f.queries // the long poll is in flight
	w.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, registry.ErrWatcherStopped) {
			t.Errorf("Next after Stop = %v, want ErrWatcherStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the pending long poll")
	}
}

func TestWatchACLFilteredEmptyIsAnError(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 3, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 4, body: "[]", aclFiltered: true},
		answer{index: 5, body: entries(entrySpec{"b", 2, api.HealthPassing, 1})},
	)
	r, _ := f.registry()
	w := watch(t, r)
	next(t, w)
	if set, err := w.Next(t.Context()); err == nil {
		t.Fatalf("Next on an answer emptied by ACLs = %v, want an error (keep the last set)", set)
	}
	if got := next(t, w); len(got) != 1 || got[0].ID != "b" {
		t.Errorf("set after the ACL error = %v, want b", got)
	}
}

func TestWatchAgentThatNeverAnswers(t *testing.T) {
	f := newFakeConsul(t) // accepts the query, never answers
	r, _ := f.registry(WithAnswerTimeout(50 * time.Millisecond))
	w := watch(t, r)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := w.Next(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("Next against a silent agent = %v, want an error well before 5s", err)
	}
}

// TestWatchHoldsTheSetThroughAnAgentRestart: a restarted agent first answers
// with an empty catalog; the watch keeps the last set until the instances
// are back, instead of leaving its clients with nothing to call.
func TestWatchHoldsTheSetThroughAnAgentRestart(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 50, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{status: http.StatusInternalServerError}, // the agent goes away
		answer{index: 3}, // fresh agent: nothing registered yet
		answer{index: 4, body: entries(entrySpec{"b", 2, api.HealthPassing, 1})},
	)
	r, _ := f.registry()
	w := watch(t, r)
	next(t, w)
	if _, err := w.Next(t.Context()); err == nil {
		t.Fatal("the failed query was not reported")
	}
	if got := next(t, w); len(got) != 1 || got[0].ID != "b" {
		t.Errorf("after the restart: %v, want b (the empty answer held back)", got)
	}
}

// TestWatchReportsAnEmptyServiceAfterTheGrace: an index that went backwards
// (a restarted agent) followed by answers that stay empty reports the empty
// set once the grace period is over.
func TestWatchReportsAnEmptyServiceAfterTheGrace(t *testing.T) {
	f := newFakeConsul(t,
		answer{index: 50, body: entries(entrySpec{"a", 1, api.HealthPassing, 1})},
		answer{index: 3},
		answer{index: 3},
	)
	r, _ := f.registry(WithRestartGrace(50 * time.Millisecond))
	w := watch(t, r)
	next(t, w)
	start := time.Now()
	if got := next(t, w); len(got) != 0 {
		t.Errorf("after the grace: %v, want the empty set", got)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("the empty set came after %v, before the 50ms grace", d)
	}
	// The query made during the grace waited at most until its end.
	var waits []string
	for {
		select {
		case q := <-f.queries:
			waits = append(waits, q["wait"])
			continue
		default:
		}
		break
	}
	if len(waits) < 3 || waits[2] == "" || waits[2] == "300000ms" {
		t.Errorf("wait parameters %q: the query during the grace should wait only until its end", waits)
	}
}
