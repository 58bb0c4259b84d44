package middleware

import (
	"context"
	"errors"
	"fmt"
	"net"
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

func TestIsAvailabilityFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{status.Error(codes.Unavailable, ""), true},
		{status.Error(codes.DeadlineExceeded, ""), true},
		{status.Error(codes.ResourceExhausted, ""), true},
		{status.Error(codes.NotFound, ""), false},
		{status.Error(codes.Canceled, ""), false},
		{context.Canceled, false},
		{errors.New("plain"), false},
	} {
		if got := IsAvailabilityFailure(tc.err); got != tc.want {
			t.Errorf("IsAvailabilityFailure(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

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
