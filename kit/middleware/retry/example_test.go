package retry_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// createdUsers is a user service whose CreateUser fails its first call.
type createdUsers struct {
	userv1.UnimplementedUserServiceServer
	calls atomic.Int32
}

func (s *createdUsers) CreateUser(ctx context.Context, req *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
	if s.calls.Add(1) == 1 {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return &userv1.CreateUserResponse{User: &userv1.User{Id: "u1", Name: req.GetName()}}, nil
}

// A client chain in which CreateUser, not idempotent by its proto options,
// is retried because the dedupe interceptor (outside retry) protects it with
// a request id. The server side would install a dedupe.Cache for it.
func Example() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	users := &createdUsers{}
	userv1.RegisterUserServiceServer(srv, users)
	go srv.Serve(lis)
	defer srv.Stop()

	r, err := retry.New(retry.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ids, err := dedupe.NewClient(dedupe.ClientConfig{Methods: []string{"/user.v1.UserService/CreateUser"}})
	if err != nil {
		panic(err)
	}
	conn, err := grpc.NewClient("passthrough:///user",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(
			ids.UnaryClientInterceptor(),
			r.UnaryClientInterceptor(),
		))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	resp, err := userv1.NewUserServiceClient(conn).CreateUser(context.Background(), &userv1.CreateUserRequest{Name: "Ada"})
	fmt.Println(resp.GetUser().GetName(), err, users.calls.Load())
	// Output: Ada <nil> 2
}
