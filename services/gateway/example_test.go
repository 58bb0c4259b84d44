package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/gateway"
	"github.com/grpckit/grpckit/services/greeter"
)

// The gateway in front of an in-process greeter: its routes, a public read,
// then a write without a token and with one.
func Example() {
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(gs, greeter.NewServer(nil, greeter.WithInstance("greeter-1")))
	go gs.Serve(lis)
	defer gs.Stop()
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()

	cfg := gateway.DefaultConfig()
	cfg.Auth.HMACSecret = "0123456789abcdef0123456789abcdef"
	gw, err := gateway.New(cfg)
	if err != nil {
		panic(err)
	}
	// What a Learner finds in Consul and through reflection, given by hand:
	// greeter (SayHello public) and user, both on cc (no user service
	// behind it).
	for _, api := range []gateway.API{
		{Name: "greeter", Services: []protoreflect.ServiceDescriptor{greeterv1.File_greeter_v1_greeter_proto.Services().Get(0)},
			Public: []string{greeterv1.GreeterService_SayHello_FullMethodName}, Conn: cc},
		{Name: "user", Services: []protoreflect.ServiceDescriptor{userv1.File_user_v1_user_proto.Services().Get(0)}, Conn: cc},
	} {
		if err := gw.SetAPI(api); err != nil {
			panic(err)
		}
	}
	for _, r := range gw.Routes() {
		fmt.Println(r.Method, r.Path, r.RPC, r.Public)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	client := srv.Client()
	show := func(resp *http.Response, err error) {
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, body)
		if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
			fmt.Println("WWW-Authenticate:", ch)
		}
	}
	show(client.Get(srv.URL + "/v1/hello/world"))
	show(client.Post(srv.URL+"/v1/users", "application/json", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`)))

	// With a development token signed with the shared secret, the write
	// passes and reaches the user service, which is missing here.
	tok, err := auth.IssueHS256(cfg.Auth.HMACSecret, "dev", time.Hour)
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/users", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	show(client.Do(req))
	// Output:
	// GET /v1/hello/{name} /greeter.v1.GreeterService/SayHello true
	// POST /v1/users /user.v1.UserService/CreateUser false
	// GET /v1/users/{id} /user.v1.UserService/GetUser false
	// GET /v1/users /user.v1.UserService/ListUsers false
	// PATCH /v1/users/{id} /user.v1.UserService/UpdateUser false
	// DELETE /v1/users/{id} /user.v1.UserService/DeleteUser false
	// 200 {"message":"Hello, world!","instance":"greeter-1"}
	// 401 {"error":{"code":"UNAUTHENTICATED","status":401,"message":"missing bearer token","details":[]}}
	// WWW-Authenticate: Bearer realm="grpckit"
	// 501 {"error":{"code":"UNIMPLEMENTED","status":501,"message":"not implemented by the user service","details":[]}}
}
