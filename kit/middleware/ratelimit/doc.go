// Package ratelimit limits the rate of gRPC calls with token buckets from
// golang.org/x/time/rate.
//
// On the server, a [Limiter] applies up to three limits to every call: a
// global one, one per method (configured per full method name, or for all
// methods of a service with "/package.Service/*"; every method has its own
// bucket) and one per caller ([middleware.Caller]: the authenticated subject
// when an auth layer ran before this one, else the peer's address — in kit's
// default server chain ratelimit runs before auth, so that floods are refused
// before token checks, and callers are peers; each caller has its own
// bucket, and the least
// recently seen callers are forgotten beyond Config.MaxCallers). A call takes
// a token from every bucket that applies; when one of them has none, the
// call is rejected at once with codes.ResourceExhausted carrying a
// google.rpc.RetryInfo whose retry_delay says when that bucket will have a
// token again, and the tokens taken from the other buckets are given back.
// The server never waits for a token, and never limits the gRPC health
// service (/grpc.health.v1.Health/*): refused health checks would make the
// registry take a loaded instance out of service.
//
// On the client, a [ClientLimiter] gives every method its own bucket (a
// per-method entry, else the service's "/package.Service/*" entry, else
// ClientConfig.Default) and either waits for a token within the call's
// deadline or fails at once. Its rejections are codes.ResourceExhausted
// errors that match [ErrLimited] with errors.Is and report LocalRejection()
// true, so that the circuit breaker does not count them against the target.
// Streams are limited when they are created.
//
// Limits change at run time with SetConfig, which updates existing buckets
// in place (their tokens are kept) rather than replacing them.
package ratelimit
