package greeter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

const (
	maxNameBytes = 200
	defaultCount = 3
	maxCount     = 100
)

// Server implements greeterv1.GreeterServiceServer. It is safe for concurrent use.
type Server struct {
	greeterv1.UnimplementedGreeterServiceServer
	users    userv1.UserServiceClient // nil: requests with a user id fail with FailedPrecondition
	instance string
	logger   *slog.Logger
}

var _ greeterv1.GreeterServiceServer = (*Server)(nil)

// Option configures a [Server].
type Option func(*Server)

// WithInstance sets the instance name reported in SayHelloResponse.instance.
// Default: "greeter@" and the local address the call arrived on.
func WithInstance(name string) Option { return func(s *Server) { s.instance = name } }

// WithLogger sets the logger; default discard.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// NewServer returns a greeter that looks users up through users, which may be
// nil for a greeter without a user service.
func NewServer(users userv1.UserServiceClient, opts ...Option) *Server {
	s := &Server{users: users, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// SayHello greets req.name, or the user with req.user_id when it is set.
func (s *Server) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	name := req.GetName()
	if req.UserId != nil {
		if req.GetUserId() == "" {
			return nil, invalid("user_id", "must not be empty when set")
		}
		var err error
		if name, err = s.userName(ctx, req.GetUserId()); err != nil {
			return nil, err
		}
	} else if err := checkName(name); err != nil {
		return nil, err
	}
	return &greeterv1.SayHelloResponse{Message: "Hello, " + name + "!", Instance: s.instanceName(ctx)}, nil
}

// StreamHellos sends req.count greetings to req.name.
func (s *Server) StreamHellos(req *greeterv1.StreamHellosRequest, stream grpc.ServerStreamingServer[greeterv1.StreamHellosResponse]) error {
	if err := checkName(req.GetName()); err != nil {
		return err
	}
	n := req.GetCount()
	switch {
	case n == 0:
		n = defaultCount
	case n < 0 || n > maxCount:
		return invalid("count", fmt.Sprintf("must be between 1 and %d, or 0 for %d", maxCount, defaultCount))
	}
	for i := int32(1); i <= n; i++ {
		msg := fmt.Sprintf("Hello, %s! (%d/%d)", req.GetName(), i, n)
		if err := stream.Send(&greeterv1.StreamHellosResponse{Message: msg, Sequence: i}); err != nil {
			return err
		}
	}
	return nil
}

// userName fetches the user's name. user's answers that say something about
// the request pass through (NotFound, InvalidArgument, Unauthenticated,
// PermissionDenied, ResourceExhausted with its pushback), and so does the end
// of the caller's own deadline or cancellation. Every other failure of user
// (its outage: Unavailable, its own timeouts, Internal, ...) becomes Internal
// with an ErrorInfo naming the dependency, never Unavailable or
// DeadlineExceeded: those codes make greeter's callers retry the call on
// another greeter, demote and eject healthy greeters for user's outage, and
// open their breakers on greeter. The user client has already retried within
// its budget.
func (s *Server) userName(ctx context.Context, id string) (string, error) {
	if s.users == nil {
		return "", status.Error(codes.FailedPrecondition, "greeter: this instance has no user service configured")
	}
	resp, err := s.users.GetUser(ctx, &userv1.GetUserRequest{Id: id})
	if err == nil {
		return resp.GetUser().GetName(), nil
	}
	if ctx.Err() != nil { // the caller's deadline or cancellation, not user's
		return "", status.FromContextError(ctx.Err()).Err()
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound, codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.ResourceExhausted:
		return "", st.Err()
	}
	s.logger.LogAttrs(ctx, slog.LevelWarn, "user service call failed", slog.String("user_id", id), slog.Any("error", err))
	return "", dependencyError("user", st)
}

// dependencyError is the Internal error that reports a failure of the
// dependency dep, whose status was st.
func dependencyError(dep string, st *status.Status) error {
	out := status.New(codes.Internal, fmt.Sprintf("greeter: %s service failed: %s: %s", dep, st.Code(), st.Message()))
	if d, err := out.WithDetails(&errdetails.ErrorInfo{
		Reason:   "DEPENDENCY_FAILED",
		Domain:   "greeter.grpckit.dev",
		Metadata: map[string]string{"dependency": dep, "code": st.Code().String()},
	}); err == nil {
		out = d
	}
	return out.Err()
}

func (s *Server) instanceName(ctx context.Context) string {
	if s.instance != "" {
		return s.instance
	}
	if p, ok := peer.FromContext(ctx); ok && p.LocalAddr != nil {
		return "greeter@" + p.LocalAddr.String()
	}
	return "greeter"
}

func checkName(name string) error {
	switch {
	case name == "":
		return invalid("name", "is required")
	case len(name) > maxNameBytes:
		return invalid("name", fmt.Sprintf("must be at most %d bytes", maxNameBytes))
	case !utf8.ValidString(name):
		return invalid("name", "must be valid UTF-8")
	}
	return nil
}

// invalid returns InvalidArgument with a BadRequest detail naming field.
func invalid(field, desc string) error {
	st := status.New(codes.InvalidArgument, fmt.Sprintf("%s %s", field, desc))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: desc},
	}}); err == nil {
		st = d
	}
	return st.Err()
}
