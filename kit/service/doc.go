// Package service runs a kit service from one call: a service declares its
// typed configuration (a struct embedding config.Standard inline, with its
// defaults) and a setup function that registers its handlers, and
// [Main] (or [Run]) does the rest:
//
//   - loads the configuration with kit/config: defaults, -config FILE,
//     GRPCKIT_* environment, flags named by YAML path, the Consul key
//     grpckit/<name>; -h lists the settings, -print-config prints them;
//   - makes the logger (its level follows log.level live) and, unless
//     registry.address is "off", the Consul registry; with Consul's ACLs
//     on, a token Consul refuses (registry.token, else CONSUL_HTTP_TOKEN)
//     fails the start with an error wrapping consul.ErrACLRefused, as does
//     a token without key:read on grpckit/<name> or service:write on
//     <name>;
//   - refuses to start when the auth section has no key (auth.hmac_secret
//     or auth.public_key_files) unless auth.disabled is true: a service
//     checks the bearer token of every call to a method that is not in
//     auth.public_methods (health and reflection are always public);
//   - builds the kit server (standard sections, registration with a gRPC
//     health check, admin listener) and hands it to setup, with
//     [Service.Client] for the clients the handlers use (sharing the
//     server's telemetry, discovering through the registry, shown on the
//     server's /debug/kit, forwarding the caller's token or else the
//     service's own identity) and [Service.HTTP] for extra listeners;
//   - serves until SIGINT, SIGTERM or the context ends, and shuts down in
//     order: deregister, drain (HTTP keep-alives off), stop the extra
//     listeners gracefully, stop gRPC gracefully, flush telemetry, close the
//     clients, run the OnStop hooks (stores), close the registry and the
//     configuration.
//
// A failed start releases everything it made.
//
//	func main() {
//		service.Main("greeter", DefaultConfig(), func(s *service.Service[Config]) error {
//			users, err := s.Client(s.Value().Greeter.UserTarget)
//			if err != nil {
//				return err
//			}
//			greeterv1.RegisterGreeterServiceServer(s.Server, greeter.NewServer(userv1.NewUserServiceClient(users)))
//			return nil
//		})
//	}
package service
