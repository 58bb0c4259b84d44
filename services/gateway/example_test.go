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

	"github.com/grpckit/grpckit/kit/middleware/auth"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/gateway"
	"github.com/grpckit/grpckit/services/greeter"
)

// The gateway in front of an in-process greeter: a public read, then a
// write without a token.
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
	gw, err := gateway.New(greeterv1.NewGreeterServiceClient(cc), userv1.NewUserServiceClient(cc), cfg)
	if err != nil {
		panic(err)
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
	// 200 {"message":"Hello, world!","instance":"greeter-1"}
	// 401 {"error":{"code":"UNAUTHENTICATED","status":401,"message":"missing bearer token","details":[]}}
	// WWW-Authenticate: Bearer realm="grpckit"
	// 501 {"error":{"code":"UNIMPLEMENTED","status":501,"message":"not implemented by the user service","details":[]}}
}
