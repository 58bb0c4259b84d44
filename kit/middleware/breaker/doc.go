// Package breaker is grpckit's client-side circuit breaker: one
// github.com/sony/gobreaker/v2 breaker per (target, method), created lazily
// the first time a method is called on a target and kept for the life of the
// [Breakers].
//
// A breaker is for a target that is down, not for one that is busy. It
// judges each call by [middleware.ClassifyOutcome]:
//
//   - an answer from the server — OK, an application error such as
//     NOT_FOUND, and RESOURCE_EXHAUSTED (a saturated server refusing the
//     excess) — is a success: the server is up. So RESOURCE_EXHAUSTED never
//     opens a breaker, and a half-open probe answered with it closes one;
//   - UNAVAILABLE is a failure;
//   - DEADLINE_EXCEEDED follows Config.DeadlineExceeded. Under the default,
//     when_silent, it is a failure only when no call of the same target and
//     method got an answer between the timed-out call's start and its end:
//     a black hole or a hung server trips the breaker as fast as before,
//     while calls that queued into their deadlines at a server that keeps
//     answering others count as neither success nor failure. "failure"
//     counts every DEADLINE_EXCEEDED (the rule before when_silent: under
//     overload the first expired calls open every client's breaker and
//     goodput drops to zero), "ignore" none;
//   - a call the caller canceled counts as neither, and so does a call
//     rejected on the client before it left the process (an error in whose
//     chain a value has a method LocalRejection() bool returning true, as
//     the client rate limiter's rejections do), so local throttling cannot
//     trip a breaker.
//
// The time of the last answer is kept per (target, method) in nanoseconds
// of the monotonic clock, written at most once a millisecond, so an answer
// less than a millisecond before a call started may count as a sign of
// life for it; an answer that came while the call was out always does.
// A configuration change keeps it.
//
// A closed breaker opens when ConsecutiveFailures failures follow one
// another, or when at least MinRequests calls finished within the current
// Interval and the share of failures among them reaches FailureRatio. An open
// breaker fails calls at once with codes.Unavailable and a message naming the
// target and method; after OpenTimeout it turns half-open and lets
// HalfOpenRequests calls through: as many successes close it, one failure
// opens it again.
//
// Unary calls are judged by the error the call returns, from the time the
// interceptor was called. Streaming calls are judged from the time the
// stream was created, by the final status of the stream as grpc-go reports it through
// [google.golang.org/grpc.OnFinish] (io.EOF at the end of a stream counts as
// OK), or by the error of stream creation when the stream could not be
// created. A stream occupies its breaker's request slot until it ends, so in
// the half-open state a long-lived stream delays further probes until it
// ends.
//
// The interceptors belong after retry in the client chain (each retry
// attempt passes the breaker) and before the client rate limiter.
package breaker
