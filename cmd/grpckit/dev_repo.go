package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry/consul"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// repoDemo is what grpckit dev adds for this repository's example stack:
// one call through discovery (greeter → user) and one through the gateway,
// with the dev token, and how to call them.
func repoDemo(ctx context.Context, reg *consul.Registry, procs []*proc, token string) error {
	var gatewayAddr string
	for _, p := range procs {
		if p.service == "gateway" {
			gatewayAddr = p.listeners["http"]
		}
	}
	if gatewayAddr == "" {
		return fmt.Errorf("no gateway instance with an http listener among %d instances", len(procs))
	}
	if err := demo(ctx, reg, gatewayAddr, token); err != nil {
		return err
	}
	for _, p := range procs {
		if p.service == "greeter" {
			fmt.Printf("    try:        grpcurl -plaintext -H 'authorization: Bearer %s' -d '{\"name\":\"world\"}' %s greeter.v1.GreeterService/SayHello\n", token, p.addr)
			break
		}
	}
	fmt.Printf("    gateway:    http://%s/v1/hello/world   API: http://%s/openapi.json\n", gatewayAddr, gatewayAddr)
	fmt.Printf("    write:      curl -X POST http://%s/v1/users -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"name\":\"Ada\",\"email\":\"ada@example.com\"}'\n", gatewayAddr, token)
	return nil
}

func demo(ctx context.Context, reg *consul.Registry, gatewayAddr, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	creds := kit.WithPerRPCCredentials(auth.BearerToken(token, auth.AllowInsecure()))
	uc, err := kit.NewClient("consul:///user", kit.WithDiscovery(reg), creds)
	if err != nil {
		return err
	}
	defer uc.Close()
	gc, err := kit.NewClient("consul:///greeter", kit.WithDiscovery(reg), creds)
	if err != nil {
		return err
	}
	defer gc.Close()
	created, err := userv1.NewUserServiceClient(uc).CreateUser(ctx, &userv1.CreateUserRequest{
		Name: "Ada Lovelace", Email: fmt.Sprintf("ada+%d@example.com", time.Now().UnixNano()),
	})
	if err != nil {
		return fmt.Errorf("user.CreateUser: %w", err)
	}
	id := created.GetUser().GetId()
	resp, err := greeterv1.NewGreeterServiceClient(gc).SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id})
	if err != nil {
		return fmt.Errorf("greeter.SayHello: %w", err)
	}
	step("demo call through consul:///greeter (greeter → consul:///user):")
	fmt.Printf("    SayHello{user_id: %q} = %q  (answered by %s)\n", id, resp.GetMessage(), resp.GetInstance())

	// The gateway learns greeter's routes from Consul and reflection
	// moments after the greeters pass their checks: 404 until then.
	var body []byte
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, b, err := get(ctx, "http://"+gatewayAddr+"/v1/hello/world")
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		if status == http.StatusOK {
			body = b
			break
		}
		if status != http.StatusNotFound || time.Now().After(deadline) {
			return fmt.Errorf("gateway GET /v1/hello/world: %d %s", status, b)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	step("demo call through the gateway:")
	fmt.Printf("    GET http://%s/v1/hello/world = %s\n", gatewayAddr, strings.TrimSpace(string(body)))
	return nil
}

// get GETs url and returns the status and the first 4 KiB of the body.
func get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, body, nil
}
