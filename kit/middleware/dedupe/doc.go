// Package dedupe makes retrying a call that is not idempotent safe: each
// logical call carries one request id, and the server runs a call with a
// given id at most once while it remembers it.
//
// Client side, [UnaryClientInterceptor] stamps a random 128-bit request id
// (hex, metadata key [RequestIDKey]) on each call of the methods it is given
// and marks the call's context [Protected]. The retry layer
// (kit/middleware/retry) reads that mark: it retries protected calls even
// when their method is not idempotent. Every attempt of the call carries the
// same id, so the interceptor must run outside (before) the retry
// interceptor in the client chain. A caller may also set the id itself in
// the outgoing metadata; it is then kept.
//
// Server side, [Cache.UnaryServerInterceptor] handles the methods listed in
// [Config.Methods]. A call with a request id is keyed by method, request id
// and caller ([middleware.Caller]), so it must run inside the auth layer. For
// a key it has seen:
//
//   - a completed call is replayed: the same response message (a copy) or
//     the same status error, without running the handler;
//   - a call still running makes the duplicate wait for it (within the
//     duplicate's own deadline) and get its result.
//
// Results are remembered for [Config.TTL] in a cache bounded to
// [Config.MaxEntries] completed calls, least recently used evicted first.
// Results that say the call may not have done its work are not remembered,
// so that a retry really runs the call again: UNAVAILABLE, DEADLINE_EXCEEDED,
// CANCELED, RESOURCE_EXHAUSTED and ABORTED, any error returned after the
// call's context ended, and a handler panic. OK responses and other errors
// (application errors such as ALREADY_EXISTS or INVALID_ARGUMENT) are
// remembered.
//
// The cache lives in the server process. A retry that lands on another
// instance of the service (the balancer usually picks another one) is not
// recognised there; full protection across instances needs the handler's
// own store to reject duplicates (as the user service's unique emails do)
// or a cache shared by the instances.
//
// Only unary calls are deduplicated. Response headers and trailers are not
// replayed. The request body is not part of the key: a client must not reuse
// a request id for a different request.
package dedupe
