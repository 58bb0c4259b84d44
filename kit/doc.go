// Package kit wires gRPC servers and clients for grpckit services.
//
// [NewServer] returns a server with the grpc.health.v1 service, server
// reflection when [WithReflection] turns it on, kit's server chain
// (telemetry, recovery, logging, retry chain stop, ratelimit, overload,
// timeout, auth when the auth section has a key, dedupe; see [Layer]) and
// an admin HTTP
// listener (/healthz, /readyz, /metrics, /debug/kit, and /debug/pprof/ when WithPprof turns it on).
// Given a registrar ([WithRegistrar]) it registers itself once it serves and
// deregisters first when it shuts down:
//
//	start:    listen, serve, health SERVING, register
//	shutdown: deregister, health NOT_SERVING, drain window, GracefulStop bounded
//	          by the caller's deadline, then Stop, then flush telemetry
//
// The drain window keeps serving while clients watching the registry drop the
// instance, so a rolling restart fails no call.
//
// [NewClient] has grpc.NewClient semantics, accepts every target grpc-go
// accepts plus consul:///name (see package
// [github.com/grpckit/grpckit/kit/resolver]), balances with kit_weighted
// (package [github.com/grpckit/grpckit/kit/balancer]), wraps calls in kit's
// client chain (telemetry, dedupe, timeout, retry, breaker, ratelimit) and
// uses plaintext credentials unless [WithTransportCredentials] says
// otherwise.
package kit
