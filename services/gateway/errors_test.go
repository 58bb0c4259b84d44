package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpckit/grpckit/kit/duration"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

// backendSecret is in the message of every error the fake greeter returns;
// it must not reach clients on 5xx answers.
const backendSecret = "dial tcp 10.1.2.3:9000"

// fakeGreeter is a greeter service whose SayHello answers by name:
// "code-N" fails with code N (with a BadRequest detail), "retry-S" fails
// with ResourceExhausted and a RetryInfo of S seconds, "unavailable-retry"
// fails with Unavailable and a RetryInfo of 2s, "block" reports on blocked
// and waits for its context to end.
type fakeGreeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	blocked chan struct{}
}

func (f *fakeGreeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	name := req.GetName()
	switch {
	case strings.HasPrefix(name, "code-"):
		n, _ := strconv.Atoi(strings.TrimPrefix(name, "code-"))
		st, _ := status.New(codes.Code(n), "failed: "+backendSecret).WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "name", Description: "bad"}}})
		return nil, st.Err()
	case strings.HasPrefix(name, "retry-"):
		secs, _ := strconv.ParseFloat(strings.TrimPrefix(name, "retry-"), 64)
		st, _ := status.New(codes.ResourceExhausted, "slow down").WithDetails(
			&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs * float64(time.Second)))})
		return nil, st.Err()
	case name == "unavailable-retry":
		st, _ := status.New(codes.Unavailable, "overloaded: "+backendSecret).WithDetails(
			&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)},
			&errdetails.BadRequest{})
		return nil, st.Err()
	case name == "block":
		f.blocked <- struct{}{}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &greeterv1.SayHelloResponse{Message: "Hello, " + name + "!"}, nil
}

// newFakeGateway returns a gateway on the fake greeter (over gRPC).
func newFakeGateway(t *testing.T, cfg Config) (*Gateway, *fakeGreeter) {
	t.Helper()
	f := &fakeGreeter{blocked: make(chan struct{}, 1)}
	cc := serveGRPC(t, "gateway", func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, f) })
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetAPI(API{Name: "greeter", Services: services(greeterv1.File_greeter_v1_greeter_proto), Public: publicMethods, Conn: cc}); err != nil {
		t.Fatal(err)
	}
	return g, f
}

func TestHTTPStatus(t *testing.T) {
	want := map[codes.Code]int{
		codes.OK:                 200,
		codes.Canceled:           499,
		codes.Unknown:            500,
		codes.InvalidArgument:    400,
		codes.DeadlineExceeded:   504,
		codes.NotFound:           404,
		codes.AlreadyExists:      409,
		codes.PermissionDenied:   403,
		codes.ResourceExhausted:  429,
		codes.FailedPrecondition: 400,
		codes.Aborted:            409,
		codes.OutOfRange:         400,
		codes.Unimplemented:      501,
		codes.Internal:           500,
		codes.Unavailable:        503,
		codes.DataLoss:           500,
		codes.Unauthenticated:    401,
		codes.Code(99):           500,
	}
	got := map[codes.Code]int{}
	for c := range want {
		got[c] = HTTPStatus(c)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HTTPStatus (-want +got):\n%s", diff)
	}
}

// TestBackendErrors maps every gRPC code a backend returns, through a real
// gRPC server.
func TestBackendErrors(t *testing.T) {
	g, _ := newFakeGateway(t, testConfig())
	for _, tc := range []struct {
		code    codes.Code
		status  int
		name    string
		message string // "" means the backend's message passes through
		details []string
	}{
		{codes.Canceled, 499, "CANCELLED", "", badRequestType},
		{codes.Unknown, 500, "UNKNOWN", "internal error", nil},
		{codes.InvalidArgument, 400, "INVALID_ARGUMENT", "", badRequestType},
		{codes.DeadlineExceeded, 504, "DEADLINE_EXCEEDED", "the greeter service did not answer in time", nil},
		{codes.NotFound, 404, "NOT_FOUND", "", badRequestType},
		{codes.AlreadyExists, 409, "ALREADY_EXISTS", "", badRequestType},
		{codes.PermissionDenied, 403, "PERMISSION_DENIED", "", badRequestType},
		{codes.ResourceExhausted, 429, "RESOURCE_EXHAUSTED", "", badRequestType},
		{codes.FailedPrecondition, 400, "FAILED_PRECONDITION", "", badRequestType},
		{codes.Aborted, 409, "ABORTED", "", badRequestType},
		{codes.OutOfRange, 400, "OUT_OF_RANGE", "", badRequestType},
		{codes.Unimplemented, 501, "UNIMPLEMENTED", "not implemented by the greeter service", nil},
		{codes.Internal, 500, "INTERNAL", "internal error", nil},
		{codes.Unavailable, 503, "UNAVAILABLE", "the greeter service is unavailable", nil},
		{codes.DataLoss, 500, "DATA_LOSS", "internal error", nil},
		{codes.Unauthenticated, 401, "UNAUTHENTICATED", "", badRequestType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, g, request{method: http.MethodGet, target: "/v1/hello/code-" + strconv.Itoa(int(tc.code))})
			e := a.decodeError(t)
			msg := tc.message
			if msg == "" {
				msg = "failed: " + backendSecret
			}
			if a.status != tc.status || e.Error.Code != tc.name || e.Error.Message != msg {
				t.Errorf("got %d %s %q, want %d %s %q", a.status, e.Error.Code, e.Error.Message, tc.status, tc.name, msg)
			}
			if diff := cmp.Diff(tc.details, e.detailTypes()); diff != "" {
				t.Errorf("detail types (-want +got):\n%s", diff)
			}
			if tc.status == http.StatusUnauthorized && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if ra := a.header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After %q without a RetryInfo", ra)
			}
		})
	}
}

var badRequestType = []string{"type.googleapis.com/google.rpc.BadRequest"}

func TestBackendRetryAfter(t *testing.T) {
	g, _ := newFakeGateway(t, testConfig())
	for _, tc := range []struct {
		name   string
		status int
		want   string
	}{
		{"retry-0.2", 429, "1"},
		{"retry-2", 429, "2"},
		{"retry-2.5", 429, "3"},
		{"retry-1000000", 429, "86400"},
		{"unavailable-retry", 503, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, g, request{method: http.MethodGet, target: "/v1/hello/" + tc.name})
			e := a.decodeError(t)
			if a.status != tc.status || a.header.Get("Retry-After") != tc.want {
				t.Errorf("got %d Retry-After %q, want %d %q", a.status, a.header.Get("Retry-After"), tc.status, tc.want)
			}
			// A 5xx keeps the RetryInfo only.
			if diff := cmp.Diff([]string{"type.googleapis.com/google.rpc.RetryInfo"}, e.detailTypes()); diff != "" {
				t.Errorf("detail types (-want +got):\n%s", diff)
			}
			if strings.Contains(string(a.body), backendSecret) {
				t.Errorf("body leaks the backend's message: %s", a.body)
			}
		})
	}
}

// TestBackendTimeout: a backend that does not answer within
// backend_timeout is answered 504.
func TestBackendTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.BackendTimeout = duration.Duration(50 * time.Millisecond)
	g, f := newFakeGateway(t, cfg)
	a := do(t, g, request{method: http.MethodGet, target: "/v1/hello/block"})
	<-f.blocked
	if e := a.decodeError(t); a.status != http.StatusGatewayTimeout || e.Error.Code != "DEADLINE_EXCEEDED" {
		t.Errorf("got %d %s: %s", a.status, e.Error.Code, a.body)
	}

	// A route's own timeout replaces backend_timeout.
	cfg.BackendTimeout = duration.Duration(time.Minute)
	cfg.Routes = map[string]RoutePolicy{greeterv1.GreeterService_SayHello_FullMethodName: {Timeout: duration.Duration(50 * time.Millisecond)}}
	g, f = newFakeGateway(t, cfg)
	a = do(t, g, request{method: http.MethodGet, target: "/v1/hello/block"})
	<-f.blocked
	if a.status != http.StatusGatewayTimeout {
		t.Errorf("with a route timeout of 50ms: %d %s", a.status, a.body)
	}
}

// TestClientGone: when the client goes away, the backend call is
// cancelled (its context ends) and the answer is 499.
func TestClientGone(t *testing.T) {
	g, f := newFakeGateway(t, testConfig())
	ctx, cancel := context.WithCancel(t.Context())
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/hello/block", nil)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.ServeHTTP(w, r)
	}()
	<-f.blocked
	cancel()
	<-done
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if e := a.decodeError(t); a.status != StatusClientClosedRequest || e.Error.Code != "CANCELLED" {
		t.Errorf("got %d %s: %s", a.status, e.Error.Code, a.body)
	}
}

// TestUnknownDetail: a detail type this binary does not know keeps its
// @type.
func TestUnknownDetail(t *testing.T) {
	w := httptest.NewRecorder()
	st := status.New(codes.NotFound, "x").Proto()
	st.Details = append(st.Details, &anypb.Any{TypeUrl: "type.googleapis.com/example.Unknown", Value: []byte{1, 2, 3}})
	writeError(w, &apiError{httpStatus: 404, st: status.FromProto(st)})
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if diff := cmp.Diff([]string{"type.googleapis.com/example.Unknown"}, a.decodeError(t).detailTypes()); diff != "" {
		t.Errorf("detail types (-want +got):\n%s", diff)
	}
}
