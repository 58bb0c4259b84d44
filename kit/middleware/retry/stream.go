package retry

import (
	"context"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// StreamClientInterceptor returns an interceptor that retries
// server-streaming calls that fail before their first response message: a
// failure to open the stream, or an error from the first RecvMsg. The
// request message is kept and sent again on the new stream. Once a message
// has arrived, errors are passed through. A hedged method's call
// ([HedgingConfig]) gets hedges until its first message. Client-streaming
// and bidirectional calls are neither retried nor hedged.
func (r *Retrier) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c := r.start(ctx, cc, method)
		if desc.ClientStreams || !desc.ServerStreams {
			return streamer(c.ctx, desc, cc, method, opts...)
		}
		s := &retryStream{call: c, desc: desc, cc: cc, streamer: streamer, opts: opts}
		if c.hedged() {
			// Hedged in the first RecvMsg, once the request is sent.
			s.hedged, s.opened = true, r.now()
			s.hedgeDelay, _ = c.hedgeDelay()
			s.learnFirst = s.hedgeDelay == 0 && c.learns()
		}
		cs, err := s.open(1)
		n := 1
		for err != nil {
			n++
			ok, rerr := c.retry(n, err)
			if !ok {
				s.ended(rerr)
				return nil, rerr
			}
			// A first attempt that failed to open is not hedged, nor its
			// time learnt: the time includes the failures and the backoff.
			s.hedgeDelay, s.learnFirst = 0, false
			cs, err = s.open(n)
		}
		s.attempt, s.cur = n, cs
		return s, nil
	}
}

// open opens attempt n of the stream; of a hedged call, with a context and
// result options of its own (openAttempt).
func (s *retryStream) open(n int) (grpc.ClientStream, error) {
	if s.hedged {
		return s.openAttempt(n)
	}
	return s.streamer(s.call.attemptContext(n), s.desc, s.cc, s.call.method, s.opts...)
}

// retryStream is a server-streaming ClientStream that opens the stream again
// when it fails before its first message. As grpc.ClientStream requires,
// SendMsg and CloseSend are called by one goroutine and RecvMsg by one
// goroutine (possibly another one).
type retryStream struct {
	call     call
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	streamer grpc.Streamer
	opts     []grpc.CallOption

	// Used by the receiving goroutine only.
	attempt  int
	received bool // a message has arrived, or the stream has ended

	// Of a hedged call (hedged): its hedging delay (0: not hedged this
	// time), whether the latency of its first attempt's first message is
	// measured, when that attempt was opened, and the current attempt,
	// whose context is cancelled and whose results are the caller's when
	// the stream ends (done).
	hedged     bool
	hedgeDelay time.Duration
	learnFirst bool
	opened     time.Time
	attemptNow *hedgeAttempt
	done       bool

	mu     sync.Mutex
	cur    grpc.ClientStream // guarded by mu; written only by the receiving goroutine, which may read it without mu
	req    any               // guarded by mu; the request sent
	sent   bool              // guarded by mu
	closed bool              // guarded by mu; CloseSend was called
}

func (s *retryStream) current() grpc.ClientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *retryStream) Header() (metadata.MD, error) { return s.current().Header() }
func (s *retryStream) Trailer() metadata.MD         { return s.current().Trailer() }
func (s *retryStream) Context() context.Context     { return s.current().Context() }

func (s *retryStream) SendMsg(m any) error {
	s.mu.Lock()
	s.req, s.sent = m, true
	cs := s.cur
	s.mu.Unlock()
	return cs.SendMsg(m)
}

func (s *retryStream) CloseSend() error {
	s.mu.Lock()
	s.closed = true
	cs := s.cur
	s.mu.Unlock()
	return cs.CloseSend()
}

func (s *retryStream) RecvMsg(m any) error {
	if s.received {
		err := s.cur.RecvMsg(m)
		if err != nil {
			s.ended(err)
		}
		return err
	}
	if msg, ok := m.(proto.Message); ok && s.hedgeDelay > 0 {
		s.mu.Lock()
		req, sent, closed := s.req, s.sent, s.closed
		s.mu.Unlock()
		if sent {
			s.received = true
			err := s.hedgeFirst(msg, req, closed)
			if err != nil {
				s.ended(err)
			}
			return err
		}
	}
	err := s.cur.RecvMsg(m)
	if s.learnFirst && answered(err) {
		s.call.observeFirst(s.opened)
	}
	for err != nil && err != io.EOF {
		s.attempt++
		ok, rerr := s.call.retry(s.attempt, err)
		if !ok {
			err = rerr
			break
		}
		if err = s.reopen(); err == nil {
			err = s.cur.RecvMsg(m)
		}
	}
	s.received = true
	if err != nil {
		s.ended(err)
	}
	return err
}

// ended ends a hedged stream when RecvMsg returned err, or when it could
// not be opened: the current attempt's context is released, and its
// results and the call's end given to the caller's call options (their
// OnFinish is called then: a hedged stream that the caller cancels and
// never reads to its end does not call it).
func (s *retryStream) ended(err error) {
	if !s.hedged || s.done {
		return
	}
	s.done = true
	if err == io.EOF {
		err = nil
	}
	s.attemptNow.cancel()
	finish(s.opts, &s.attemptNow.res, err)
}

// reopen opens the stream again and sends what was sent on the failed one.
func (s *retryStream) reopen() error {
	if s.hedged {
		s.attemptNow.cancel() // the failed attempt's
	}
	cs, err := s.open(s.attempt)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cur = cs
	req, sent, closed := s.req, s.sent, s.closed
	s.mu.Unlock()
	if sent {
		// io.EOF means the stream has failed; RecvMsg tells how.
		if err := cs.SendMsg(req); err != nil && err != io.EOF {
			return err
		}
	}
	if closed {
		cs.CloseSend()
	}
	return nil
}
