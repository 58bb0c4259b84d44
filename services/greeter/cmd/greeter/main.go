// Command greeter runs the greeter example service. It registers in Consul as
// "greeter" and reaches the user service through consul:///user.
//
//	greeter -listen 127.0.0.1:0 -consul 127.0.0.1:8500
package main

import (
	"context"
	"flag"
	"os"

	"github.com/grpckit/grpckit/internal/svcmain"
	"github.com/grpckit/grpckit/kit"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

func main() {
	fs := flag.NewFlagSet("greeter", flag.ExitOnError)
	flags := svcmain.Register(fs)
	userTarget := fs.String("user-target", svcmain.Env("GRPCKIT_GREETER_USER_TARGET", "consul:///user"), "target of the user service (env GRPCKIT_GREETER_USER_TARGET)")
	fs.Parse(os.Args[1:])
	flags.RunProbe()

	logger, err := flags.Logger("greeter")
	if err != nil {
		svcmain.Fatal(logger, "bad flags", err)
	}
	reg, err := flags.Registry(logger)
	if err != nil {
		svcmain.Fatal(logger, "consul registry", err)
	}
	srv, err := flags.Server("greeter", reg, logger)
	if err != nil {
		svcmain.Fatal(logger, "server", err)
	}
	// The user client shares the server's telemetry: one trace spans both hops.
	clientOpts := []kit.ClientOption{kit.WithTelemetry(srv.Layers().Telemetry), kit.WithLogger(logger)}
	if reg != nil {
		clientOpts = append(clientOpts, kit.WithDiscovery(reg))
	}
	users, err := kit.NewClient(*userTarget, clientOpts...)
	if err != nil {
		svcmain.Fatal(logger, "user client", err)
	}
	defer users.Close()
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(userv1.NewUserServiceClient(users), greeter.WithLogger(logger)))
	if err := srv.Run(context.Background()); err != nil {
		svcmain.Fatal(logger, "greeter stopped", err)
	}
}
