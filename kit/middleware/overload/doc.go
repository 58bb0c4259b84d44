// Package overload holds the two algorithms that keep goodput up when a
// service is asked for more than it can serve: a server-side adaptive
// concurrency [Limiter] and a client-side adaptive [Throttle].
//
// A [Limiter] bounds the calls a server runs at once. In adaptive mode it
// finds the bound from observed latency alone, with no CPU metric, in the
// manner of Netflix concurrency-limits' gradient2: the average latency of
// each sample window (the short-term latency) is compared with an
// exponential average over many windows (the long-term baseline); while the
// short-term latency stays within Tolerance times the baseline the limit
// grows by about its square root per window, and as latency grows past that
// the limit shrinks in proportion (at most halving per window before
// smoothing). The limit always stays within [MinLimit, MaxLimit]. A call
// beyond the limit is refused at once: the limiter never queues.
//
// A [Throttle] is Google SRE's client-side adaptive throttling for one
// target: it counts the calls the client asked for (requests) and the calls
// the target accepted (accepts) over a sliding window, and refuses a new
// call locally with probability
//
//	max(0, (requests − K·accepts) / (requests + 1))
//
// so that a busy target sees a little more than it can serve instead of the
// whole excess, and every caller still gets a share of its capacity.
//
// Both are safe for concurrent use, follow their configuration live through
// SetConfig, and read time from a clock that tests replace. Neither knows
// about gRPC: the interceptors that use them decide which calls count.
package overload
