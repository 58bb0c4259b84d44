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
// and caller ([middleware.CallerKey]: "id:" and the token's subject, else
// the peer's IPv4 address or IPv6 /64), so it must run inside the auth layer: two
// callers never share a result, whatever ids they pick. The entry also
// keeps [HashRequest] of the request (SHA-256 of its deterministic proto
// encoding). For a key it has seen:
//
//   - a different request under the same key is refused with
//     INVALID_ARGUMENT ([ErrRequestIDReused]), never answered with another
//     request's result;
//   - a completed call is replayed: the same response message (a copy) or
//     the same status error, without running the handler;
//   - a call still running makes the duplicate wait for it (within the
//     duplicate's own deadline) and get its result.
//
// Results are remembered for [Config.TTL] in a cache bounded to
// [Config.MaxEntries] completed calls, least recently used evicted first.
// One caller identity holds at most [Config.MaxEntriesPerCaller] of them (a
// tenth by default): past its share a caller evicts its own oldest results,
// so one caller cannot flush everyone else's.
//
// Results that say the call may not have done its work, or not done it
// properly, are not remembered, so that a retry really runs the call again:
// UNAVAILABLE, DEADLINE_EXCEEDED, CANCELED, RESOURCE_EXHAUSTED and ABORTED;
// INTERNAL, UNKNOWN (any error that is not a status) and DATA_LOSS, which
// report a failure the server did not expect and should not be pinned to a
// request id for the whole TTL; any error returned after the call's context
// ended; and a handler panic. OK responses and the other errors
// (application errors such as ALREADY_EXISTS or INVALID_ARGUMENT) are
// remembered.
//
// The cache lives in the server process: a retry that lands on another
// instance (the balancer usually picks another one) is not recognised
// there. Writes that must be exactly-once across instances record the call
// in the service's own database, in the transaction of the write: the
// interceptor gives every unary call that carries a valid request id its
// [Request] (caller, method, id, hash), whether or not the method is in
// [Config.Methods], through [FromContext], and [Journal] keeps the records
// in a SQL table (SQLite or PostgreSQL): [Journal.Claim] at the start of
// the transaction answers a call already done with its recorded response,
// and makes a concurrent duplicate wait for the first; [Journal.Record]
// stores the response with the write; [Journal.Prune] drops old records.
// The user service (services/user) works this way.
//
// Only unary calls are deduplicated. Response headers and trailers are not
// replayed. The request body is not part of the key, but a body that
// differs from the first one under the key is refused, in the cache and in
// the journal.
package dedupe
