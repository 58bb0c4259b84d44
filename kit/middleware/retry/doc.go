// Package retry retries failed gRPC client calls, without letting retries
// multiply the load on a service that is down.
//
// [Retrier.UnaryClientInterceptor] makes another attempt of a failed call
// only when all of these hold:
//
//   - the status code is one of [Config.Codes] (default UNAVAILABLE and
//     RESOURCE_EXHAUSTED, the latter only with a google.rpc.RetryInfo),
//     and the error is not a client-side layer's
//     refusal (middleware.IsLocalRejection);
//   - the call has had fewer than [Config.MaxAttempts] attempts;
//   - the method may run twice: [Config.Methods] says so, or, when it says
//     nothing, the method's proto option idempotency_level is
//     NO_SIDE_EFFECTS or IDEMPOTENT (read from the descriptor registered in
//     protoregistry.GlobalFiles, once per method) or the call is protected
//     by the dedupe client interceptor ([dedupe.Protected]);
//   - the call's context allows retries ([RetriesAllowed]) and is not done;
//   - the backoff (exponential with jitter, or longer when the server asks
//     with google.rpc.RetryInfo) ends before the call's deadline: a retry
//     never runs past the deadline;
//   - the retry budget of the target has a token. The budget is shared by
//     all calls to one target ([grpc.ClientConn.Target]) through the
//     Retrier: every call earns it [Config.BudgetRatio] tokens, every retry
//     spends one, and [Config.BudgetMinRetriesPerSecond] is allowed on top
//     for when traffic is low. A target that fails every call thus receives
//     at most about (1 + BudgetRatio) times the calls made to it.
//
// Retries of a call carry their attempt number in the metadata key
// [AttemptKey] ("2", "3", ...). A server that installs
// [Retrier.UnaryServerInterceptor] or [Retrier.StreamServerInterceptor]
// marks the context of a retried call with [WithoutRetries]; the calls its
// handler makes with that context are then not retried and carry
// [NoRetryKey], which makes the next server do the same. Retries thus happen
// at most at the hops that received a first attempt, and an outage deep in a
// call chain does not multiply the calls at each hop (3 attempts over n hops
// would otherwise make 3^n calls). This only works when handlers pass their
// server context (or one derived from it) to their downstream calls, which
// kit services must do.
//
// [Retrier.StreamClientInterceptor] retries server-streaming calls only until
// the first response message arrives; after that, errors reach the caller.
//
// Hedging ([HedgingConfig], off by default) sends another attempt of a call
// to a named idempotent method that has not answered after a delay (fixed,
// or a quantile of the method's recent latency), without waiting for it to
// fail; the first answer wins and the other attempts are cancelled. Hedges
// spend the same retry budget and follow the same rules (deadline, chain
// stop, attempt metadata); server-streaming calls are hedged until their
// first message.
//
// In the client chain, install the interceptors inside timeout (so that the
// deadline covers every attempt) and inside the dedupe client interceptor
// (so that every attempt carries the same request id), and outside the
// circuit breaker, so that each attempt is seen by the breaker and picks an
// endpoint again.
package retry
