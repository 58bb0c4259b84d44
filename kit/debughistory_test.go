package kit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/internal/kittest"
)

// TestDebugHistorySampler: with an admin listener, a goroutine samples the
// page at the configured step from Serve on (the sampler stops with the
// server: TestMain checks for leaks); a window of 0 turns the history off,
// and a window shorter than its step is refused.
func TestDebugHistorySampler(t *testing.T) {
	history := func(srv *kit.Server) *kit.DebugHistory {
		t.Helper()
		resp, err := http.Get("http://" + srv.AdminAddr().String() + "/debug/kit?format=json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc kit.DebugKit
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return doc.History
	}
	srv := newServer(t, kit.WithDebugHistory(500*time.Millisecond, 100*time.Millisecond))
	serve(t, srv)
	kittest.WaitFor(t, "a full window of samples", func() bool {
		h := history(srv)
		return h != nil && len(h.Times) == 5 && len(h.Server.InFlight) == 5
	})
	if h := history(srv); time.Duration(h.Step) != 100*time.Millisecond || time.Duration(h.Window) != 500*time.Millisecond {
		t.Errorf("step %v, window %v; want 100ms, 500ms", h.Step, h.Window)
	}

	off := newServer(t, kit.WithDebugHistory(0, 0))
	serve(t, off)
	if h := history(off); h != nil {
		t.Errorf("history %+v with a window of 0", h)
	}
	resp, err := http.Get("http://" + off.AdminAddr().String() + "/debug/kit")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "No history") || strings.Contains(string(page), "<svg") {
		t.Errorf("the page without history draws charts or does not say so:\n%s", page)
	}

	if _, err := kit.NewServer(kit.WithDebugHistory(time.Second, time.Minute)); err == nil {
		t.Error("NewServer accepted a history window shorter than its step")
	}
	// A step too short to sample (the sampler would gather the document
	// nonstop) is refused, naming the minimum.
	for _, step := range []time.Duration{time.Nanosecond, kit.MinHistoryStep - time.Millisecond} {
		if _, err := kit.NewServer(kit.WithDebugHistory(time.Second, step)); err == nil || !strings.Contains(err.Error(), "100ms") {
			t.Errorf("NewServer with a history step of %v: %v, want an error naming the minimum", step, err)
		}
	}
}
