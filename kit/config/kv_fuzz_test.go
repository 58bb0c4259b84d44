package config

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/internal/consulq"
)

// kvAnswer is one answer of the fake Consul agent of FuzzConsulKV.
type kvAnswer struct {
	status int
	index  string // X-Consul-Index; "" for none
	body   []byte
}

// fakeKV is a Consul agent that answers the first GET of the key with the
// start document, the second with the answer under test, and holds every
// later one (the watch's next blocking query) until the client gives up,
// reporting it on next.
type fakeKV struct {
	mu     sync.Mutex
	n      int
	answer kvAnswer
	next   chan string // the index of the query after the answer
}

func (k *fakeKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.n++
	n, a, next := k.n, k.answer, k.next
	k.mu.Unlock()
	w.Header().Set("X-Consul-LastContact", "0")
	w.Header().Set("X-Consul-KnownLeader", "true")
	switch n {
	case 1:
		w.Header().Set("X-Consul-Index", "10")
		body, _ := json.Marshal([]*api.KVPair{{Key: "grpckit/fuzz", Value: []byte(kvStartDoc), ModifyIndex: 10}})
		w.Write(body)
	case 2:
		if a.index != "" {
			w.Header()["X-Consul-Index"] = []string{a.index}
		}
		w.WriteHeader(a.status)
		w.Write(a.body)
	default:
		select {
		case next <- r.URL.Query().Get("index"):
		default:
		}
		<-r.Context().Done()
	}
}

// kvStartDoc is the document the store starts with.
const kvStartDoc = "ratelimit: {rps: 5}\n"

// FuzzConsulKV has the store's Consul KV watch read arbitrary answers
// (status, X-Consul-Index header, body: the JSON list of pairs with its
// base64 values, or raw bytes) after a valid start document: nothing
// panics; the configuration either stays the start snapshot, unchanged, or
// becomes a valid snapshot made from the answer's document; a well-formed
// answer with a valid document is applied (whatever its index header),
// one whose document is invalid, or a failed query, changes nothing; and
// the next blocking query follows Consul's index rules (internal/consulq).
func FuzzConsulKV(f *testing.F) {
	// status picks 200, 404, 500, 403, 200.
	f.Add(200, "11", []byte("ratelimit: {rps: 9}"), true)
	f.Add(200, "11", []byte("ratelimit: {rps: -1}"), true)
	f.Add(200, "3", []byte("timeout: {default: 2s}"), true)
	f.Add(200, "0", []byte(""), true)
	f.Add(200, "", []byte("ratelimit: [1]"), true)
	f.Add(200, "x", []byte("ratelimit: {rps: 9}"), true)
	f.Add(200, "18446744073709551616", []byte("ratelimit: {rps: 9}"), true)
	f.Add(200, "12", []byte(`[{"Key":"grpckit/fuzz","Value":"not base64!"}]`), false)
	f.Add(200, "12", []byte(`[{"Key":"grpckit/fuzz","Value":null}]`), false)
	f.Add(200, "12", []byte(`[]`), false)
	f.Add(200, "12", []byte(`[null]`), false)
	f.Add(200, "12", []byte(`{"Key":"grpckit/fuzz"}`), false)
	f.Add(200, "12", []byte(`[{"Key":"grpckit/fuzz","Value":"cmF0ZWxpbWl0OiB7cnBzOiA3fQ=="}]`), false)
	f.Add(1, "13", []byte(""), false)
	f.Add(2, "13", []byte("rpc error"), false)
	f.Add(200, "12", []byte("\x00\xff"), false)

	fake := &fakeKV{}
	srv := httptest.NewServer(fake)
	f.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: strings.TrimPrefix(srv.URL, "http://"), Scheme: "http"})
	if err != nil {
		f.Fatal(err)
	}
	defaults := fuzzConfig{Standard: DefaultStandard()}
	quick := optionFunc(func(o *options) {
		o.minInterval, o.backoffBase, o.backoffMax = 0, time.Millisecond, time.Millisecond
		o.answerTimeout = 5 * time.Second
	})
	s0, base := fuzzStore(f)

	f.Fuzz(func(t *testing.T, status int, index string, body []byte, wrap bool) {
		status = []int{200, 404, 500, 403, 200}[(status%5+5)%5]
		// A header value is visible ASCII; what net/http refuses or trims
		// is not the store's concern.
		index = strings.Map(func(r rune) rune {
			if r < 0x21 || r > 0x7e {
				return -1
			}
			return r
		}, index)
		var doc []byte
		if wrap {
			doc = body
			body, _ = json.Marshal([]*api.KVPair{{Key: "grpckit/fuzz", Value: doc}})
			status = 200
		}
		next := make(chan string, 1)
		fake.mu.Lock()
		fake.n, fake.answer, fake.next = 0, kvAnswer{status: status, index: index, body: body}, next
		fake.mu.Unlock()

		s, err := Load("fuzz", defaults, WithConsul(client), WithEnv(func(string) (string, bool) { return "", false }), quick)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		defer s.Close()
		start := s.Current()
		if start.Value.RateLimit.RPS != 5 {
			t.Fatalf("the start document was not applied: %+v", start.Value.RateLimit)
		}
		var nextIndex string
		select {
		case nextIndex = <-next:
		case <-time.After(10 * time.Second):
			t.Fatal("the watch made no query after the answer")
		}
		cur := s.Current()
		switch {
		case cur.Version == start.Version:
			if cur != start {
				t.Fatalf("the snapshot changed without a new version")
			}
		case cur.Version == start.Version+1:
			if cur.Source != "consul grpckit/fuzz" {
				t.Fatalf("new snapshot from %q", cur.Source)
			}
			if err := validate(&cur.Value); err != nil {
				t.Fatalf("applied an invalid config: %v", err)
			}
		default:
			t.Fatalf("version %d after one answer", cur.Version)
		}

		// The api client ignores an X-Consul-Index it cannot parse (LastIndex
		// 0, which NextIndex reads as 1); a failed query is followed by
		// IndexAfterError.
		parsed, err := strconv.ParseUint(index, 10, 64)
		if err != nil {
			parsed = 0
		}
		if nextIndex == "" {
			nextIndex = "0" // a query with WaitIndex 0 sends no index
		}
		var pairs []*api.KVPair
		failed := status != 200 && status != 404 || status == 200 && json.NewDecoder(bytes.NewReader(body)).Decode(&pairs) != nil
		want := consulq.NextIndex(10, parsed)
		if failed {
			want = consulq.IndexAfterError
			if cur.Version != start.Version {
				t.Fatalf("a failed query (status %d, body %q) changed the config", status, body)
			}
		}
		if nextIndex != strconv.FormatUint(want, 10) {
			t.Fatalf("answer with index %q (failed %v), then a query with index %s, want %d", index, failed, nextIndex, want)
		}
		if wrap {
			want, err := s0.build(layers{defaults: base, kv: doc})
			if err == nil {
				if cur.Version != start.Version+1 || !reflect.DeepEqual(cur.Value, want) {
					t.Fatalf("valid document %q not applied: version %d, %+v", doc, cur.Version, cur.Value.RateLimit)
				}
			} else if cur.Version != start.Version {
				t.Fatalf("document %q applied although it builds with the error %v", doc, err)
			}
		}
	})
}
