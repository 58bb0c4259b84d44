// Package kit wires gRPC servers and clients for grpckit services.
//
// [NewServer] returns a server with the grpc.health.v1 service, server
// reflection and an admin HTTP listener (/healthz, /readyz, /debug/pprof/).
// Given a registrar ([WithRegistrar]) it registers itself once it serves and
// deregisters first when it shuts down:
//
//	start:    listen, serve, health SERVING, register
//	shutdown: deregister, health NOT_SERVING, drain window, GracefulStop bounded
//	          by the caller's deadline, then Stop
//
// The drain window keeps serving while clients watching the registry drop the
// instance, so a rolling restart fails no call.
//
// [NewClient] has grpc.NewClient semantics, accepts every target grpc-go
// accepts plus consul:///name (see package [github.com/grpckit/grpckit/kit/balancer]),
// and uses plaintext credentials unless [WithTransportCredentials] says
// otherwise.
package kit
