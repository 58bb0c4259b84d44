// Package overload keeps goodput up when a service is asked for more than
// it can serve. It is kit's overload layer: [Server] on the server side, an
// adaptive concurrency limit that refuses the excess at once with
// RESOURCE_EXHAUSTED and a RetryInfo instead of letting it queue into its
// deadline; [Client] on the client side, adaptive throttling per target
// that sheds locally what the target would refuse anyway. Both are on by
// default in kit's chains; the overload section of the configuration
// (overload.server, overload.client) tunes them live. Underneath are two
// algorithms usable on their own: [Limiter] and [Throttle].
//
// A [Limiter] bounds the calls a server runs at once. In adaptive mode it
// finds the bound from observed latency alone, with no CPU metric, in the
// manner of Netflix concurrency-limits' gradient2: the median latency of
// each sample window (the short-term latency; the median, so that a server
// with a fast method and a slow one is judged by its typical call, while a
// queue, which every call waits in, still moves it) is compared with a
// baseline, the latency of calls that did not queue. While the short-term
// latency stays within Tolerance times the baseline the limit grows: it
// doubles per window until the first window whose latency makes it fall
// (slow start, so that a cold server finds a high limit in a few windows),
// then grows by about its square root per window, smoothed. When latency
// grows past that the limit falls at once in proportion (at most halving
// per window), so a congestion is relieved within a window or two. A
// window lasts Window and MinSamples calls, or closes on a limit's worth
// of calls when it refused some and the limit is in slow start or far too
// high. The limit always stays within [MinLimit, MaxLimit]. A call beyond
// the limit is refused at once: the limiter never queues.
//
// The baseline is the first window's median, moved by later windows
// (quickly downwards, slowly upwards). It can go stale: a server started
// under load queues from its first calls on, a long congestion raises it,
// a slower dependency makes every call slower without a queue. So after a
// window in which calls were refused — the first such window, then at most
// once per ProbeInterval, or every few windows when the limit is near its
// floor, where a probe costs little — the limiter probes instead of moving
// the limit: it holds the limit at MinLimit, takes the first MinSamples
// calls admitted as its group, and when all of them have ended (or the
// probe has lasted two windows and four rounds of the baseline; calls
// still out then count as lasting until then) their median latency, with
// no queue in front of the server's resources, becomes the baseline, and
// slow start begins again. A group, not the first calls to end, for those
// are the fast ones. (Envoy's adaptive concurrency filter measures its
// minimum latency the same way.)
//
// Calls that give no sample (streams, calls whose caller canceled) still
// hold places. When a window has had no sample for two windows and four
// times the baseline while calls were refused, the limit rises blindly,
// as in a window with headroom: latency cannot set it, and holding it
// would refuse every other call for as long as those calls last. A server
// starting with more calls at once than InitialLimit refuses some of them
// for its first ~100ms, while it probes and slow start raises the limit.
//
// A [Throttle] is Google SRE's client-side adaptive throttling for one
// target, made fair between the target's clients. It counts over a sliding
// window the calls the client was asked for (requests), the calls it sent
// that ended (ended) and those the target accepted (accepts), and refuses a
// new call locally with probability
//
//	max(0, (requests − K·requests·accepts/ended) / (requests + 1))
//
// SRE's formula, max(0, (requests − K·accepts) / (requests + 1)), with the
// accepts scaled to all the requests at the accept ratio of the calls that
// ended (calls still out count for nothing, so a burst into a quiet window
// is not throttled).
// Unscaled, a client that is throttled more sends less, so gets fewer
// accepts, so is throttled more still: the clients of one busy target drift
// apart until some get almost nothing (in kit's overload scenario the
// least served of 4 equal clients got 18–27% of the goodput of the most
// served). Scaled, the probability depends on the target's accept ratio
// alone, so every client sheds alike and gets its share (85–92%). The
// price: a busy target sees about √(K · what it serves · what it is asked)
// rather than K times what it serves — 2.5 times its capacity at 3x, 4.5
// times at 10x with K 2, against 3 and 10 times without a throttle — and
// refuses that excess at once.
//
// Both are safe for concurrent use, follow their configuration live through
// SetConfig, and read time from a clock that tests replace. Neither knows
// about gRPC: the interceptors that use them decide which calls count.
package overload
