// Command greeter runs the greeter example service. It registers in Consul as
// "greeter" and reaches the user service through consul:///user. Every
// setting comes from kit/config: defaults, -config FILE, GRPCKIT_*
// variables, flags and the Consul key grpckit/greeter (-h lists them,
// -print-config shows the result).
//
//	greeter -server.listen 127.0.0.1:0 -registry.address 127.0.0.1:8500
package main

import (
	"github.com/grpckit/grpckit/kit/service"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

func main() {
	service.Main("greeter", DefaultConfig(), func(s *service.Service[Config]) error {
		// The user client shares the server's telemetry: one trace spans both hops.
		users, err := s.Client(s.Value().Greeter.UserTarget)
		if err != nil {
			return err
		}
		greeterv1.RegisterGreeterServiceServer(s.Server, greeter.NewServer(userv1.NewUserServiceClient(users), greeter.WithLogger(s.Logger)))
		return nil
	})
}
