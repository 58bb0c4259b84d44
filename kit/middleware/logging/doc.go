// Package logging writes an access log of gRPC calls with log/slog: one
// record per call, when it ends, with the attributes
//
//	method    full method name, "/package.Service/Method"
//	code      the status code's name, "OK", "NotFound", ...
//	duration  time from the start of the call to its end (for a stream, to
//	          the end of the stream)
//	peer      the other side's address (server: the caller; client: the
//	          server that answered, when known)
//	target    client only: the ClientConn's target
//	trace_id  the OpenTelemetry trace id, only when the context carries a
//	          valid span context
//	error     the status message, only when the code is not OK
//
// Records are written at Config.Level; a call slower than
// Config.SlowThreshold is written at Warn (or Config.Level when that is
// higher) and counted (grpckit.logging.slow). When the slog handler is
// enabled neither at Config.Level nor (with a slow threshold) at the slow
// level, the interceptors only make that check: no clock read, no record.
//
// The server interceptors belong after recovery in the server chain, so
// that a recovered panic is logged with codes.Internal.
package logging
