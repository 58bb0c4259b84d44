package middleware

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestCaller(t *testing.T) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5555}})
	if got := Caller(ctx); got != "10.0.0.7" {
		t.Errorf("Caller from peer = %q, want 10.0.0.7", got)
	}
	if got := Caller(WithCaller(ctx, "alice")); got != "alice" {
		t.Errorf("Caller = %q, want alice", got)
	}
	if got := Caller(context.Background()); got != "" {
		t.Errorf("Caller without peer = %q", got)
	}
}

// Per-caller limits count an IPv6 host by its /64, an IPv4 one by its
// address, an authenticated caller by its identity.
func TestCallerKey(t *testing.T) {
	at := func(a net.Addr) context.Context { return peer.NewContext(context.Background(), &peer.Peer{Addr: a}) }
	for _, tc := range []struct {
		ctx  context.Context
		want string
	}{
		{at(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5555}), "10.0.0.7"},
		{at(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 443}), "2001:db8:1:2::/64"},
		{at(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9"), Port: 80}), "2001:db8:1:2::/64"},
		{at(&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.8"), Port: 80}), "10.0.0.8"},
		{at(&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 80}), "fe80::/64"},
		{at(&net.UnixAddr{Name: "/run/kit.sock", Net: "unix"}), "/run/kit.sock"},
		{WithCaller(at(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}), "alice"), "id:alice"},
		{WithCaller(at(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 1}), "10.0.0.7"), "id:10.0.0.7"}, // not the host
		{context.Background(), ""},
	} {
		if got := CallerKey(tc.ctx); got != tc.want {
			t.Errorf("CallerKey(%v) = %q, want %q", tc.ctx, got, tc.want)
		}
	}
}

func TestClassifyOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, OutcomeAnswered},
		{status.Error(codes.NotFound, ""), OutcomeAnswered},
		{status.Error(codes.Internal, ""), OutcomeAnswered},
		{status.Error(codes.ResourceExhausted, "server refused"), OutcomeAnswered},
		{status.Error(codes.Unavailable, ""), OutcomeUnavailable},
		{status.Error(codes.DeadlineExceeded, ""), OutcomeDeadline},
		{status.FromContextError(context.DeadlineExceeded).Err(), OutcomeDeadline},
		{status.Error(codes.Canceled, ""), OutcomeNeutral},
		{context.Canceled, OutcomeNeutral},
		{fmt.Errorf("wrapped: %w", localErr{true}), OutcomeNeutral},
		{localRE{}, OutcomeNeutral},            // a client rate limiter's RESOURCE_EXHAUSTED
		{errors.New("plain"), OutcomeAnswered}, // status.Code: UNKNOWN
	} {
		if got := ClassifyOutcome(tc.err); got != tc.want {
			t.Errorf("ClassifyOutcome(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// localRE is a local rejection carrying RESOURCE_EXHAUSTED.
type localRE struct{}

func (localRE) Error() string              { return "limited" }
func (localRE) GRPCStatus() *status.Status { return status.New(codes.ResourceExhausted, "limited") }
func (localRE) LocalRejection() bool       { return true }

type localErr struct{ local bool }

func (e localErr) Error() string        { return "rejected" }
func (e localErr) LocalRejection() bool { return e.local }

func TestIsLocalRejection(t *testing.T) {
	if !IsLocalRejection(fmt.Errorf("wrapped: %w", localErr{true})) {
		t.Error("a wrapped local rejection is not recognised")
	}
	if IsLocalRejection(localErr{false}) || IsLocalRejection(status.Error(codes.Unavailable, "x")) || IsLocalRejection(nil) {
		t.Error("not a local rejection, but reported as one")
	}
}

func TestMethodTable(t *testing.T) {
	tbl, err := NewMethodTable(map[string]int{"/a.S/M": 1, "/a.S/*": 2, "/b.T/N": 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		want   int
		ok     bool
	}{
		{"/a.S/M", 1, true}, {"/a.S/Other", 2, true}, {"/b.T/N", 3, true}, {"/b.T/Other", 0, false}, {"/c.U/M", 0, false}, {"nonsense", 0, false},
	} {
		if got, ok := tbl.Lookup(tc.method); got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%q) = %d, %v; want %d, %v", tc.method, got, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"M", "/a.S", "/a.S/", "//M", "/a.S/M/x", "/a.S/M*", "/a*/M", "a.S/M"} {
		if _, err := NewMethodSet(bad); err == nil {
			t.Errorf("NewMethodSet(%q) accepted a malformed pattern", bad)
		}
	}
	if n := tbl.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func FuzzCheckMethodPattern(f *testing.F) {
	for _, s := range []string{"/a.S/M", "/a.S/*", "", "/", "//", "/a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckMethodPattern(p) != nil {
			return
		}
		tbl, err := NewMethodSet(p)
		if err != nil {
			t.Fatalf("accepted pattern %q fails NewMethodSet: %v", p, err)
		}
		if !strings.HasSuffix(p, "*") {
			if _, ok := tbl.Lookup(p); !ok {
				t.Fatalf("exact pattern %q does not match itself", p)
			}
		}
	})
}

// A marked unknown-method answer keeps its status exactly.
func TestUnknownMethod(t *testing.T) {
	orig := status.Error(codes.Unimplemented, "unknown service x.Y")
	err := UnknownMethod(orig)
	if !IsUnknownMethod(err) || IsUnknownMethod(orig) || IsUnknownMethod(nil) {
		t.Errorf("IsUnknownMethod: marked %v, unmarked %v", IsUnknownMethod(err), IsUnknownMethod(orig))
	}
	if st, ok := status.FromError(err); !ok || st.Code() != codes.Unimplemented || st.Message() != "unknown service x.Y" {
		t.Errorf("status of the marked error: %v, %v", st, ok)
	}
}
