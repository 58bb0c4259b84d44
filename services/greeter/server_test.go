package greeter

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeUsers answers GetUser from a map, or with err when it is set.
type fakeUsers struct {
	userv1.UserServiceClient // other methods are not used by the greeter
	names                    map[string]string
	err                      error
	calls                    chan string
}

var _ userv1.UserServiceClient = (*fakeUsers)(nil)

func (f *fakeUsers) GetUser(ctx context.Context, req *userv1.GetUserRequest, _ ...grpc.CallOption) (*userv1.GetUserResponse, error) {
	f.calls <- req.GetId()
	if f.err != nil {
		return nil, f.err
	}
	name, ok := f.names[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "user %q not found", req.GetId())
	}
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetId(), Name: name}}, nil
}

func serve(t *testing.T, s *Server) greeterv1.GreeterServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(gs, s)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return greeterv1.NewGreeterServiceClient(cc)
}

func ptr(s string) *string { return &s }

func TestSayHello(t *testing.T) {
	users := &fakeUsers{names: map[string]string{"u1": "Ada"}, calls: make(chan string, 10)}
	c := serve(t, NewServer(users, WithInstance("g-1")))
	for _, tc := range []struct {
		name      string
		req       *greeterv1.SayHelloRequest
		want      string
		code      codes.Code
		violation string
	}{
		{name: "name", req: &greeterv1.SayHelloRequest{Name: "Bob"}, want: "Hello, Bob!"},
		{name: "user", req: &greeterv1.SayHelloRequest{Name: "ignored", UserId: ptr("u1")}, want: "Hello, Ada!"},
		{name: "unknown user", req: &greeterv1.SayHelloRequest{UserId: ptr("nobody")}, code: codes.NotFound},
		{name: "empty user id", req: &greeterv1.SayHelloRequest{UserId: ptr("")}, code: codes.InvalidArgument, violation: "user_id"},
		{name: "no name", req: &greeterv1.SayHelloRequest{}, code: codes.InvalidArgument, violation: "name"},
		{name: "long name", req: &greeterv1.SayHelloRequest{Name: strings.Repeat("x", 201)}, code: codes.InvalidArgument, violation: "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.SayHello(t.Context(), tc.req)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if tc.code == codes.OK {
				if resp.GetMessage() != tc.want || resp.GetInstance() != "g-1" {
					t.Errorf("got %q from %q, want %q from g-1", resp.GetMessage(), resp.GetInstance(), tc.want)
				}
				return
			}
			if tc.violation != "" {
				if diff := cmp.Diff([]string{tc.violation}, violations(err)); diff != "" {
					t.Errorf("field violations (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestSayHelloUserServiceFailures(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		// user's outage is not greeter's: never a code that makes greeter's
		// callers retry, demote or eject greeter.
		{status.Error(codes.Unavailable, "no children to pick from"), codes.Internal},
		{status.Error(codes.Internal, "database on fire"), codes.Internal},
		{status.Error(codes.DeadlineExceeded, "user's own timeout"), codes.Internal},
		{errors.New("not a status"), codes.Internal},
		// Answers about the request pass through.
		{status.Error(codes.InvalidArgument, "bad id"), codes.InvalidArgument},
		{status.Error(codes.NotFound, "no such user"), codes.NotFound},
		{status.Error(codes.PermissionDenied, "not yours"), codes.PermissionDenied},
		{status.Error(codes.ResourceExhausted, "shed"), codes.ResourceExhausted},
	} {
		users := &fakeUsers{err: tc.err, calls: make(chan string, 1)}
		c := serve(t, NewServer(users))
		_, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{UserId: ptr("u1")})
		if got := status.Code(err); got != tc.want {
			t.Errorf("user service answering %v: greeter answered %v, want %v", tc.err, err, tc.want)
		}
		if tc.want == codes.Internal {
			var info *errdetails.ErrorInfo
			for _, d := range status.Convert(err).Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if info.GetReason() != "DEPENDENCY_FAILED" || info.GetMetadata()["dependency"] != "user" {
				t.Errorf("user service answering %v: greeter's error details %v, want an ErrorInfo naming user", tc.err, info)
			}
		}
	}
	// The caller's own deadline ends the call with DeadlineExceeded.
	// (called directly: over gRPC the client ends the call itself).
	users := &fakeUsers{err: status.Error(codes.DeadlineExceeded, "late"), calls: make(chan string, 1)}
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := NewServer(users).SayHello(ctx, &greeterv1.SayHelloRequest{UserId: ptr("u1")}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("SayHello past the caller's deadline = %v, want DeadlineExceeded", err)
	}
	c := serve(t, NewServer(nil))
	if _, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{UserId: ptr("u1")}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("greeter without user service: %v, want FailedPrecondition", err)
	}
}

func TestSayHelloDefaultInstanceIsLocalAddress(t *testing.T) {
	c := serve(t, NewServer(nil))
	resp, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetInstance() != "greeter@bufconn" {
		t.Errorf("instance %q, want greeter@ and the local address", resp.GetInstance())
	}
}

func TestStreamHellos(t *testing.T) {
	c := serve(t, NewServer(nil))
	recvAll := func(req *greeterv1.StreamHellosRequest) ([]string, error) {
		stream, err := c.StreamHellos(t.Context(), req)
		if err != nil {
			return nil, err
		}
		var msgs []string
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return msgs, nil
			}
			if err != nil {
				return msgs, err
			}
			msgs = append(msgs, m.GetMessage())
		}
	}
	got, err := recvAll(&greeterv1.StreamHellosRequest{Name: "Ada", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Hello, Ada! (1/2)", "Hello, Ada! (2/2)"}, got); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if got, _ := recvAll(&greeterv1.StreamHellosRequest{Name: "Ada"}); len(got) != 3 {
		t.Errorf("count 0 gave %d messages, want 3", len(got))
	}
	for _, req := range []*greeterv1.StreamHellosRequest{{Name: "Ada", Count: -1}, {Name: "Ada", Count: 101}, {Count: 1}} {
		if _, err := recvAll(req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("StreamHellos(%v) = %v, want InvalidArgument", req, err)
		}
	}
}

func violations(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}
