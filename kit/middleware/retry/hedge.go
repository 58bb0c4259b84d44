package retry

import (
	"context"
	"io"
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpckit/grpckit/kit/middleware"
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
	if l.pending.Add(1)%recomputeEvery == 0 {
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
// was cancelled because another answered, how long it had run.
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
}

func newHedgeTimer(delay time.Duration) *hedgeTimer {
	return &hedgeTimer{t: time.NewTimer(delay), delay: delay, armed: true}
}

func (h *hedgeTimer) c() <-chan time.Time { return h.t.C }
func (h *hedgeTimer) stop()               { h.t.Stop() }

// reset arms the timer for a hedging delay after an attempt was sent.
func (h *hedgeTimer) reset() {
	h.t.Reset(h.delay)
	h.armed, h.afterFailed = true, false
}

// failed arms the timer after an attempt failed with err, a retried code:
// at once, after the pushback err asks for, or never when it asks for more
// than maxBackoff.
func (h *hedgeTimer) failed(err error, maxBackoff time.Duration) {
	wait := time.Duration(0)
	if pushback, ok := retryDelay(err); ok {
		if pushback > maxBackoff {
			h.t.Stop()
			h.armed = false
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

// attempt is one attempt of a hedged call, with its own reply message,
// context and the call options that write results (peer, header,
// trailer), so that concurrent attempts do not share them.
type attempt struct {
	n       int
	ctx     context.Context
	cancel  context.CancelFunc
	start   time.Time
	reply   proto.Message
	opts    []grpc.CallOption
	peer    peer.Peer
	header  metadata.MD
	trailer metadata.MD
	err     error
}

// newAttempt prepares attempt n of a call with options opts, whose reply is
// of reply's type.
func (c *call) newAttempt(n int, reply proto.Message, opts []grpc.CallOption) *attempt {
	a := &attempt{n: n, start: c.r.now(), reply: reply.ProtoReflect().New().Interface()}
	a.ctx, a.cancel = context.WithCancel(c.attemptContext(n))
	a.opts = make([]grpc.CallOption, 0, len(opts))
	for _, o := range opts {
		switch o.(type) {
		case grpc.PeerCallOption:
			o = grpc.Peer(&a.peer)
		case grpc.HeaderCallOption:
			o = grpc.Header(&a.header)
		case grpc.TrailerCallOption:
			o = grpc.Trailer(&a.trailer)
		}
		a.opts = append(a.opts, o)
	}
	return a
}

// deliver gives the caller what attempt a received: its reply into reply,
// and its peer, header and trailer to the options that ask for them.
func (a *attempt) deliver(reply proto.Message, opts []grpc.CallOption) {
	if a.err == nil {
		proto.Reset(reply)
		proto.Merge(reply, a.reply)
	}
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.PeerCallOption:
			*o.PeerAddr = a.peer
		case grpc.HeaderCallOption:
			*o.HeaderAddr = a.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = a.trailer
		}
	}
}

// hedgeAttempt is what the hedging loop needs of an attempt.
type hedgeAttempt interface {
	number() int
	started() time.Time
	outcome() error // io.EOF: a stream that ended without a message
}

func (a *attempt) number() int        { return a.n }
func (a *attempt) started() time.Time { return a.start }
func (a *attempt) outcome() error     { return a.err }

// race waits for the attempts of a hedged call, of which the first is
// running: launch(n) starts attempt n, which sends itself on results when
// it has an outcome. Another attempt is launched after each delay without
// a decisive outcome, and at once (after the server's pushback) when one
// fails with a retried code, while mayHedge allows. race returns the first
// decisive attempt (success, io.EOF, or an error that is not retried),
// else the last that failed; how many attempts are still running; and the
// caller's context error if the caller gave up first.
func (c *call) race(delay time.Duration, results <-chan hedgeAttempt, launch func(n int)) (winner hedgeAttempt, running int, ctxErr error) {
	var last hedgeAttempt
	next := newHedgeTimer(delay)
	defer next.stop()
	launched := 1
	running = 1
	for winner == nil && ctxErr == nil && (running > 0 || next.armed) {
		select {
		case a := <-results:
			running--
			if a.number() == 1 {
				c.observeFirst(a.started())
			}
			if err := a.outcome(); err == nil || err == io.EOF || !c.cfg.retries(err) || middleware.IsLocalRejection(err) {
				winner = a
				break
			}
			last = a
			next.failed(a.outcome(), time.Duration(c.cfg.cfg.MaxBackoff))
		case <-next.c():
			if c.mayHedge(launched+1, next.lead()) {
				c.r.hedges.Add(c.ctx, 1, c.info.opts...)
				launched++
				launch(launched)
				running++
				next.reset()
			} else {
				next.armed = false
			}
		case <-c.ctx.Done():
			ctxErr = status.FromContextError(c.ctx.Err()).Err()
		}
	}
	if winner == nil {
		winner = last
	}
	return winner, running, ctxErr
}

// drain waits for the running attempts that race left, once they have been
// cancelled.
func (c *call) drain(results <-chan hedgeAttempt, running int) {
	for ; running > 0; running-- {
		if a := <-results; a.number() == 1 {
			c.observeFirst(a.started())
		}
	}
}

// hedge runs a hedged unary call (see race). The other attempts are
// cancelled, and hedge returns after each has ended.
func (c *call) hedge(delay time.Duration, method string, req any, reply proto.Message, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	results := make(chan hedgeAttempt, c.cfg.hedgeAttempts)
	var out []*attempt
	launch := func(n int) {
		a := c.newAttempt(n, reply, opts)
		out = append(out, a)
		go func() {
			a.err = invoker(a.ctx, method, req, a.reply, cc, a.opts...)
			results <- a
		}()
	}
	launch(1)
	w, running, ctxErr := c.race(delay, results, launch)
	for _, a := range out {
		if a != w {
			a.cancel()
		}
	}
	c.drain(results, running)
	for _, a := range out {
		a.cancel()
	}
	if ctxErr != nil {
		return ctxErr
	}
	winner := w.(*attempt)
	if winner.n > 1 && winner.err == nil {
		c.r.hedgesWon.Add(c.ctx, 1, c.info.opts...)
	}
	winner.deliver(reply, opts)
	return winner.err
}

// openHedged opens the first attempt of a hedged server-streaming call. The
// hedging happens in the stream's first RecvMsg, once the request is sent.
func (c *call) openHedged(desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts []grpc.CallOption) (grpc.ClientStream, error) {
	s := &retryStream{call: *c, desc: desc, cc: cc, streamer: streamer, opts: opts, attempt: 1}
	s.hedgeDelay, _ = c.hedgeDelay()
	s.learnFirst = c.learns()
	if s.learnFirst {
		s.opened = c.r.now()
	}
	ctx, cancel := context.WithCancel(c.attemptContext(1))
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	s.cur, s.cancel = cs, cancel
	return s, nil
}

// streamAttempt is one attempt of a hedged server-streaming call, waiting
// for its first message.
type streamAttempt struct {
	n      int
	cs     grpc.ClientStream
	cancel context.CancelFunc
	start  time.Time
	msg    proto.Message // its own first message
	err    error         // of the first RecvMsg; io.EOF: the stream ended without a message
}

func (a *streamAttempt) number() int        { return a.n }
func (a *streamAttempt) started() time.Time { return a.start }
func (a *streamAttempt) outcome() error     { return a.err }

// hedgeFirst receives the first message of a hedged server-streaming call
// into m: from the first attempt, or from a hedge opened after each
// hedging delay without a message (see race). The attempt that delivers a
// message, ends its stream or fails with an error that is not retried
// becomes the stream read from then on; the others are cancelled, and
// hedgeFirst returns after each has ended.
func (s *retryStream) hedgeFirst(m any) error {
	c := &s.call
	msg, ok := m.(proto.Message)
	s.mu.Lock()
	req, sent, closed := s.req, s.sent, s.closed
	s.mu.Unlock()
	if !ok || !sent {
		return s.cur.RecvMsg(m)
	}
	results := make(chan hedgeAttempt, c.cfg.hedgeAttempts)
	recv := func(a *streamAttempt) {
		go func() {
			a.err = a.cs.RecvMsg(a.msg)
			results <- a
		}()
	}
	first := &streamAttempt{n: 1, cs: s.cur, cancel: s.cancel, start: s.opened, msg: msg.ProtoReflect().New().Interface()}
	out := []*streamAttempt{first}
	recv(first)
	launch := func(n int) {
		a := &streamAttempt{n: n, start: c.r.now(), msg: msg.ProtoReflect().New().Interface()}
		out = append(out, a)
		var ctx context.Context
		ctx, a.cancel = context.WithCancel(c.attemptContext(n))
		if a.cs, a.err = s.streamer(ctx, s.desc, s.cc, c.method, s.opts...); a.err == nil {
			if a.err = a.cs.SendMsg(req); a.err == nil || a.err == io.EOF {
				a.err = nil
				if closed {
					a.cs.CloseSend()
				}
				recv(a)
				return
			}
		}
		results <- a
	}
	w, running, ctxErr := c.race(s.hedgeDelay, results, launch)
	for _, a := range out {
		if a != w || ctxErr != nil {
			a.cancel()
		}
	}
	c.drain(results, running)
	if ctxErr != nil {
		return ctxErr
	}
	winner := w.(*streamAttempt)
	if winner.cs != nil { // nil when it failed to open
		s.mu.Lock()
		s.cur, s.cancel = winner.cs, winner.cancel
		s.mu.Unlock()
	}
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
