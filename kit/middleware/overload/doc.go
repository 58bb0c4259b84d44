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
// manner of Netflix concurrency-limits' gradient2: the average latency of
// each sample window (the short-term latency) is compared with a baseline,
// the latency of calls that did not queue. While the short-term latency
// stays within Tolerance times the baseline the limit grows: it doubles per
// window until the first window whose latency makes it fall (slow start,
// so that a cold server finds a high limit in a few windows), then grows by
// about its square root per window, smoothed. When latency grows past that
// the limit falls at once in proportion (at most halving per window), so a
// congestion is relieved within a window or two. The limit always stays within
// [MinLimit, MaxLimit]. A call beyond the limit is refused at once: the
// limiter never queues.
//
// The baseline is the latency of calls that did not queue. The first
// window sets it: its fastest call when the others were much slower (a
// server started under load queues from its first calls on; a probe
// follows at once to tell a queue from calls that simply vary), else its
// average; later windows move it, quickly downwards, slowly upwards. A
// baseline can still go stale: a long congestion raises it, a slower
// dependency makes every call slower without a queue. So after a window in
// which calls were refused, at most once per ProbeInterval (every few
// windows when the limit is near its floor, where a probe costs little),
// the limiter probes: it holds the limit at MinLimit until MinSamples
// calls that started after it have ended (or two windows have passed),
// takes their latency as the baseline, and starts slow start again
// (Envoy's adaptive concurrency filter measures its minimum latency the
// same way).
//
// A [Throttle] is Google SRE's client-side adaptive throttling for one
// target, made fair between the target's clients. It counts over a sliding
// window the calls the client was asked for (requests), the calls it sent
// (sent) and the calls the target accepted (accepts), and refuses a new
// call locally with probability
//
//	max(0, (requests − K·accepts·requests/sent) / (requests + 1))
//
// SRE's formula, max(0, (requests − K·accepts) / (requests + 1)), with the
// accepts scaled to all the requests at the accept ratio of the calls sent.
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
