// Package recovery turns a panic in a gRPC handler into a codes.Internal
// error so that the process lives on. The client sees only "internal
// error"; the panic value and stack are logged with slog at Error and
// counted (grpckit.recovery.panics).
//
// Only panics on the goroutine that runs the handler (and the interceptors
// after this one) are recovered; a goroutine the handler starts must recover
// its own panics. The interceptors belong first in the server chain, right
// after telemetry's (which then records the call as INTERNAL), so that they
// cover every other interceptor.
package recovery
