package retry

import (
	"context"
	"io"
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// Latencies of a hedged method's first attempts are kept in buckets that
// grow by 2^(1/4) (19%) from latencyBase, over two generations of
// latencyGeneration each.
const (
	latencyBase       = 10 * time.Microsecond
	latencyBuckets    = 100 // up to about 10 µs x 2^25 = 5.6 minutes
	latencyGeneration = 10 * time.Second
	minLatencySamples = 20 // fewer calls known: no derived delay
	recomputeEvery    = 16 // observations between two computations of the delay
)

// latencies is the recent latency distribution of a method's first
// attempts, from which its hedging delay is derived. Lock-free: an
// observation is a few atomic adds; every recomputeEvery-th one computes
// the quantile.
type latencies struct {
	gens    [2]latencyGen
	cur     atomic.Int32 // index of the generation being filled
	began   atomic.Int64 // when it began, in unix nanoseconds
	delay   atomic.Int64 // the quantile, in nanoseconds; 0 while unknown
	pending atomic.Int32 // observations since the delay was computed
}

type latencyGen struct {
	counts [latencyBuckets]atomic.Uint32
	total  atomic.Uint32
}

func bucketOf(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	return min(int(4*math.Log2(float64(d)/float64(latencyBase))), latencyBuckets-1)
}

// bucketTop is the latency at the top of bucket i.
func bucketTop(i int) time.Duration {
	return time.Duration(float64(latencyBase) * math.Exp2(float64(i+1)/4))
}

// observe adds a latency d measured at now, and recomputes the q-quantile
// every recomputeEvery observations.
func (l *latencies) observe(now time.Time, d time.Duration, q float64) {
	t := now.UnixNano()
	began := l.began.Load()
	if t-began >= int64(latencyGeneration) && l.began.CompareAndSwap(began, t) {
		// The older generation is emptied and filled from now on.
		next := 1 - l.cur.Load()
		g := &l.gens[next]
		for i := range g.counts {
			g.counts[i].Store(0)
		}
		g.total.Store(0)
		l.cur.Store(next)
	}
	g := &l.gens[l.cur.Load()]
	g.counts[bucketOf(d)].Add(1)
	g.total.Add(1)
	if n := l.pending.Add(1); n%recomputeEvery == 0 || n == minLatencySamples {
		l.delay.Store(int64(l.quantile(q)))
	}
}

// quantile returns the q-quantile of both generations (the top of its
// bucket), or 0 with fewer than minLatencySamples observations.
func (l *latencies) quantile(q float64) time.Duration {
	total := l.gens[0].total.Load() + l.gens[1].total.Load()
	if total < minLatencySamples {
		return 0
	}
	rank := uint32(math.Ceil(q * float64(total)))
	var sum uint32
	for i := range latencyBuckets {
		if sum += l.gens[0].counts[i].Load() + l.gens[1].counts[i].Load(); sum >= rank {
			return bucketTop(i)
		}
	}
	return bucketTop(latencyBuckets - 1)
}

// hedged reports whether the call's method is hedged: named in
// Hedging.Methods, allowed to run twice, and the context allows retries.
func (c *call) hedged() bool {
	if c.cfg.hedged.Len() == 0 || c.noRetry {
		return false
	}
	if on, _ := c.cfg.hedged.Lookup(c.method); !on {
		return false
	}
	if allowed, ok := c.cfg.methods.Lookup(c.method); ok {
		return allowed
	}
	return c.info.idempotent
}

// hedgeDelay returns the hedging delay of a hedged call, and false when the
// method's latency is not known yet or the deadline is closer than the
// delay.
func (c *call) hedgeDelay() (time.Duration, bool) {
	h := &c.cfg.cfg.Hedging
	d := time.Duration(h.Delay)
	if d == 0 {
		if d = time.Duration(c.info.latencies().delay.Load()); d == 0 {
			return 0, false
		}
		d = max(d, time.Duration(h.MinDelay))
	}
	if dl, ok := c.ctx.Deadline(); ok && dl.Sub(c.r.now()) <= d {
		return 0, false
	}
	return d, true
}

// learns reports whether the call's first attempt is measured: the method is
// hedged with a delay derived from its latency.
func (c *call) learns() bool { return c.cfg.cfg.Hedging.Delay == 0 && c.hedged() }

// observeFirst records the latency of the call's first attempt, or, when it
// was cancelled because another answered, how long it had run. Only those:
// a failure's duration (a refusal, a connection refused) is no latency.
func (c *call) observeFirst(start time.Time) {
	if c.cfg.cfg.Hedging.Delay > 0 {
		return
	}
	now := c.r.now()
	c.info.latencies().observe(now, now.Sub(start), c.cfg.quantile)
}

// mayHedge reports whether attempt n (2 or more) of a hedged call may be
// sent now: within MaxAttempts, before the deadline, with a budget token.
func (c *call) mayHedge(n int, delay time.Duration) bool {
	if n > c.cfg.hedgeAttempts || c.ctx.Err() != nil {
		return false
	}
	now := c.r.now()
	if dl, ok := c.ctx.Deadline(); ok && dl.Sub(now) <= delay {
		return false
	}
	if !c.budget.withdraw(&c.cfg.cfg, now) {
		c.r.budgetRefusals.Add(c.ctx, 1, c.budget.refusalOpts...)
		return false
	}
	return true
}

// hedgeTimer says when the next attempt of a hedged call is due: a hedging
// delay after the last attempt was sent, or at once (after the server's
// pushback) when an attempt failed with a retried code.
type hedgeTimer struct {
	t           *time.Timer
	delay       time.Duration
	armed       bool // an attempt is due when t fires
	afterFailed bool // it follows a failure rather than a delay
	stopped     bool // disarmed for good: a hedge was refused on this side
}

func newHedgeTimer(first, delay time.Duration) *hedgeTimer {
	return &hedgeTimer{t: time.NewTimer(first), delay: delay, armed: true}
}

func (h *hedgeTimer) c() <-chan time.Time { return h.t.C }
func (h *hedgeTimer) stop()               { h.t.Stop() }

// disarm sends no further attempt for now (a later retried failure may
// arm the timer again); for good, stopped is set too.
func (h *hedgeTimer) disarm() {
	h.t.Stop()
	h.armed = false
}

// reset arms the timer for a hedging delay after an attempt was sent.
func (h *hedgeTimer) reset() {
	if h.stopped {
		return
	}
	h.t.Reset(h.delay)
	h.armed, h.afterFailed = true, false
}

// failed arms the timer after an attempt failed with err, a retried code:
// at once, after the pushback err asks for, or never when it asks for more
// than maxBackoff.
func (h *hedgeTimer) failed(err error, maxBackoff time.Duration) {
	if h.stopped {
		return
	}
	wait := time.Duration(0)
	if pushback, ok := retryDelay(err); ok {
		if pushback > maxBackoff {
			h.disarm()
			return
		}
		wait = pushback
	}
	h.t.Reset(wait)
	h.armed, h.afterFailed = true, true
}

// lead is how much of the deadline the attempt due now must leave: the
// hedging delay (a hedge that cannot beat the deadline by that much is
// not sent), or nothing for an attempt that replaces a failed one.
func (h *hedgeTimer) lead() time.Duration {
	if h.afterFailed {
		return 0
	}
	return h.delay
}

// answered reports whether err ends an attempt with an answer whose time
// is a latency: a success (io.EOF: a stream that ended), or an error the
// server's handler returned, not a refusal.
func answered(err error) bool {
	if err == nil || err == io.EOF {
		return true
	}
	code := status.Code(err)
	return code != codes.ResourceExhausted && statuscode.IsAnswer(code)
}

// results are what grpc writes into the call options of an attempt when it
// ends: each attempt of a hedged call has its own, and the caller's options
// get the winner's.
type callResults struct {
	peer    peer.Peer
	header  metadata.MD
	trailer metadata.MD
}

// attemptOptions returns opts with the options that write results
// pointed at r, and without OnFinish, which the hedging code calls once
// for the whole call (finish).
func attemptOptions(opts []grpc.CallOption, r *callResults) []grpc.CallOption {
	out := make([]grpc.CallOption, 0, len(opts))
	for _, o := range opts {
		switch o.(type) {
		case grpc.PeerCallOption:
			o = grpc.Peer(&r.peer)
		case grpc.HeaderCallOption:
			o = grpc.Header(&r.header)
		case grpc.TrailerCallOption:
			o = grpc.Trailer(&r.trailer)
		case grpc.OnFinishCallOption:
			continue
		}
		out = append(out, o)
	}
	return out
}

// finish gives the caller's options r's results and calls their OnFinish
// with the call's error.
func finish(opts []grpc.CallOption, r *callResults, err error) {
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.PeerCallOption:
			*o.PeerAddr = r.peer
		case grpc.HeaderCallOption:
			*o.HeaderAddr = r.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = r.trailer
		case grpc.OnFinishCallOption:
			o.OnFinish(err)
		}
	}
}

// hedgeAttempt is one attempt of a hedged call as the hedging loop sees it.
type hedgeAttempt struct {
	n        int
	start    time.Time
	cancel   context.CancelFunc
	res      callResults
	err      error // io.EOF: a stream that ended without a message
	panicked any   // what the attempt's goroutine panicked with

	reply proto.Message     // of a unary call: its own reply
	cs    grpc.ClientStream // of a stream: nil until opened, or if it failed to open
	msg   proto.Message     // of a stream: its own first message
}

// run runs f as attempt a in a goroutine that sends a on results when f
// returns or panics.
func (a *hedgeAttempt) run(results chan<- *hedgeAttempt, f func() error) {
	go func() {
		defer func() {
			a.panicked = recover()
			results <- a
		}()
		a.err = f()
	}()
}

// race waits for the attempts of a hedged call, of which the first is
// running: launch(n) starts attempt n, which sends itself on results when
// it has an outcome. Another attempt is launched after each delay without
// a decisive outcome (the first after first), and at once (after the server's
// pushback) when one fails with a retried code, while mayHedge allows; a
// hedge refused on this side (an open breaker, a throttle) stops the
// hedging. race returns the first decisive attempt (success, io.EOF, a
// panic, an error that is not retried), else the last that failed; the
// attempts it launched, the first included; and the caller's context
// error if the caller gave up first. It leaves the cancelling and the
// draining of the other attempts to its caller (settle).
func (c *call) race(first, delay time.Duration, results chan *hedgeAttempt, a1 *hedgeAttempt, launch func(n int) *hedgeAttempt) (winner *hedgeAttempt, out []*hedgeAttempt, running int, ctxErr error) {
	next := newHedgeTimer(first, delay)
	defer next.stop()
	out = []*hedgeAttempt{a1}
	running = 1
	var last *hedgeAttempt
	for winner == nil && ctxErr == nil && (running > 0 || next.armed) {
		select {
		case a := <-results:
			running--
			err := a.err
			if a.n == 1 && answered(err) {
				c.observeFirst(a.start)
			}
			switch {
			case a.panicked != nil || err == nil || err == io.EOF:
				winner = a
			case middleware.IsLocalRejection(err) && a.n > 1:
				last = a
				next.disarm()
				next.stopped = true
			case !c.cfg.retries(err) || middleware.IsLocalRejection(err):
				winner = a
			default:
				last = a
				next.failed(err, time.Duration(c.cfg.cfg.MaxBackoff))
			}
		case <-next.c():
			if c.mayHedge(len(out)+1, next.lead()) {
				c.r.hedges.Add(c.ctx, 1, c.info.opts...)
				out = append(out, launch(len(out)+1))
				running++
				next.reset()
			} else {
				next.disarm()
			}
		case <-c.ctx.Done():
			ctxErr = status.FromContextError(c.ctx.Err()).Err()
		}
	}
	if winner == nil {
		winner = last
	}
	return winner, out, running, ctxErr
}

// settle cancels every attempt but the winner (all of them when the caller
// gave up), waits for the running ones to end, and re-panics in the
// caller's goroutine if an attempt panicked.
func (c *call) settle(winner *hedgeAttempt, out []*hedgeAttempt, running int, results <-chan *hedgeAttempt, ctxErr error) {
	for _, a := range out {
		if a != winner || ctxErr != nil || a.cs == nil && a.reply == nil {
			a.cancel()
		}
	}
	hedgeWon := ctxErr == nil && winner != nil && winner.n > 1 && winner.panicked == nil && (winner.err == nil || winner.err == io.EOF)
	for ; running > 0; running-- {
		if a := <-results; a.n == 1 && hedgeWon {
			c.observeFirst(a.start) // cancelled because a hedge won: it took at least this long
		}
	}
	for _, a := range out {
		if a.panicked != nil {
			for _, a := range out {
				a.cancel()
			}
			panic(a.panicked)
		}
	}
}

// hedge runs a hedged unary call (see race): each attempt has its own
// context, reply and result options; the winner's are the caller's once
// every attempt has ended.
func (c *call) hedge(delay time.Duration, method string, req any, reply proto.Message, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	results := make(chan *hedgeAttempt, c.cfg.hedgeAttempts)
	launch := func(n int) *hedgeAttempt {
		a := &hedgeAttempt{n: n, start: c.r.now(), reply: reply.ProtoReflect().New().Interface()}
		ctx, cancel := context.WithCancel(c.attemptContext(n))
		a.cancel = cancel
		aopts := attemptOptions(opts, &a.res)
		a.run(results, func() error { return invoker(ctx, method, req, a.reply, cc, aopts...) })
		return a
	}
	winner, out, running, ctxErr := c.race(delay, delay, results, launch(1), launch)
	c.settle(winner, out, running, results, ctxErr)
	for _, a := range out {
		a.cancel()
	}
	err := ctxErr
	if err == nil {
		err = winner.err
		if err == nil {
			proto.Reset(reply)
			proto.Merge(reply, winner.reply)
			if winner.n > 1 {
				c.r.hedgesWon.Add(c.ctx, 1, c.info.opts...)
			}
		}
	}
	var r callResults
	if winner != nil {
		r = winner.res
	}
	finish(opts, &r, err)
	return err
}

// openAttempt opens attempt n of a hedged stream with its own context and
// result options, which become the current attempt's.
func (s *retryStream) openAttempt(n int) (grpc.ClientStream, error) {
	a := s.newStreamAttempt(n)
	cs, err := s.streamer(a.ctx, s.desc, s.cc, s.call.method, attemptOptions(s.opts, &a.res)...)
	a.cs = cs
	s.attemptNow = a.hedgeAttempt // failed or not: its results are the call's if it is the last
	if err != nil {
		a.cancel()
		return nil, err
	}
	return cs, nil
}

// streamAttempt adds to a hedgeAttempt of a stream the context it opens
// with.
type streamAttempt struct {
	*hedgeAttempt
	ctx context.Context
}

func (s *retryStream) newStreamAttempt(n int) streamAttempt {
	a := &hedgeAttempt{n: n, start: s.call.r.now()}
	ctx, cancel := context.WithCancel(s.call.attemptContext(n))
	a.cancel = cancel
	return streamAttempt{a, ctx}
}

// hedgeFirst receives the first message of a hedged server-streaming call
// into msg: from the first attempt, or from a hedge opened after each
// hedging delay without a message (see race), each hedge opened, sent the
// request and read in a goroutine of its own. The attempt that delivers a
// message, ends its stream or fails with an error that is not retried
// becomes the stream read from then on; the others are cancelled, and
// hedgeFirst returns after each has ended.
func (s *retryStream) hedgeFirst(msg proto.Message, req any, closed bool) error {
	c := &s.call
	results := make(chan *hedgeAttempt, c.cfg.hedgeAttempts)
	first := s.attemptNow
	first.msg = msg.ProtoReflect().New().Interface()
	first.run(results, func() error { return first.cs.RecvMsg(first.msg) })
	launch := func(n int) *hedgeAttempt {
		sa := s.newStreamAttempt(n)
		a := sa.hedgeAttempt
		a.msg = msg.ProtoReflect().New().Interface()
		a.run(results, func() error {
			cs, err := s.streamer(sa.ctx, s.desc, s.cc, c.method, attemptOptions(s.opts, &a.res)...)
			if err != nil {
				return err
			}
			if err := cs.SendMsg(req); err != nil && err != io.EOF { // io.EOF: RecvMsg tells how it failed
				return err
			}
			if closed {
				cs.CloseSend()
			}
			a.cs = cs
			return cs.RecvMsg(a.msg)
		})
		return a
	}
	// The delay counts from here, not from the opening: a caller that reads
	// late must not find a hedge sent at once beside a message that waits.
	winner, out, running, ctxErr := c.race(s.hedgeDelay, s.hedgeDelay, results, first, launch)
	c.settle(winner, out, running, results, ctxErr)
	if ctxErr != nil {
		return ctxErr
	}
	if winner.cs != nil {
		s.mu.Lock()
		s.cur = winner.cs
		s.mu.Unlock()
	}
	s.attemptNow = winner // failed to open or not, its results are the call's
	if winner.err != nil {
		return winner.err
	}
	if winner.n > 1 {
		c.r.hedgesWon.Add(c.ctx, 1, c.info.opts...)
	}
	proto.Reset(msg)
	proto.Merge(msg, winner.msg)
	return nil
}
