// Package breaker is grpckit's client-side circuit breaker: one
// github.com/sony/gobreaker/v2 breaker per (target, method), created lazily
// the first time a method is called on a target and kept for the life of the
// [Breakers].
//
// A breaker counts only availability failures
// ([middleware.IsAvailabilityFailure]: UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED) as failures. Every other outcome, application errors
// such as NOT_FOUND included, counts as a success: the server answered. A call
// the caller canceled counts as neither, and so does a call rejected on the
// client before it left the process (an error in whose chain a value has a
// method LocalRejection() bool returning true, as the client rate limiter's
// rejections do), so local throttling cannot trip a breaker.
//
// A closed breaker opens when ConsecutiveFailures failures follow one
// another, or when at least MinRequests calls finished within the current
// Interval and the share of failures among them reaches FailureRatio. An open
// breaker fails calls at once with codes.Unavailable and a message naming the
// target and method; after OpenTimeout it turns half-open and lets
// HalfOpenRequests calls through: as many successes close it, one failure
// opens it again.
//
// Unary calls are judged by the error the call returns. Streaming calls are
// judged by the final status of the stream as grpc-go reports it through
// [google.golang.org/grpc.OnFinish] (io.EOF at the end of a stream counts as
// OK), or by the error of stream creation when the stream could not be
// created. A stream occupies its breaker's request slot until it ends, so in
// the half-open state a long-lived stream delays further probes until it
// ends.
//
// The interceptors belong after retry in the client chain (each retry
// attempt passes the breaker) and before the client rate limiter.
package breaker
