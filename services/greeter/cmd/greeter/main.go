// Command greeter runs the greeter example service. It registers in Consul as
// "greeter" and reaches the user service through consul:///user. Every
// setting comes from kit/config: defaults, -config FILE, GRPCKIT_*
// variables, flags and the Consul key grpckit/greeter (-h lists them,
// -print-config shows the result).
//
//	greeter -server.listen 127.0.0.1:0 -registry.address 127.0.0.1:8500
package main

import (
	"context"
	"os"

	"github.com/grpckit/grpckit/internal/svcmain"
	"github.com/grpckit/grpckit/kit"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

func main() {
	svc := svcmain.Start("greeter", DefaultConfig(), os.Args[1:])
	defer svc.Close()
	srv, err := svc.Server()
	if err != nil {
		svcmain.Fatal(svc.Logger, "server", err)
	}
	// The user client shares the server's telemetry: one trace spans both hops.
	users, err := svc.Client(svc.Config.Current().Value.Greeter.UserTarget, kit.WithTelemetry(srv.Telemetry()))
	if err != nil {
		svcmain.Fatal(svc.Logger, "user client", err)
	}
	defer users.Close()
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(userv1.NewUserServiceClient(users), greeter.WithLogger(svc.Logger)))
	if err := srv.Run(context.Background()); err != nil {
		svcmain.Fatal(svc.Logger, "greeter stopped", err)
	}
}
