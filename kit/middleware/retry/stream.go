package retry

import (
	"context"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// StreamClientInterceptor returns an interceptor that retries
// server-streaming calls that fail before their first response message: a
// failure to open the stream, or an error from the first RecvMsg. The
// request message is kept and sent again on the new stream. Once a message
// has arrived, errors are passed through. Client-streaming and bidirectional
// calls are not retried.
func (r *Retrier) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c := r.start(ctx, cc, method)
		if desc.ClientStreams || !desc.ServerStreams {
			return streamer(c.ctx, desc, cc, method, opts...)
		}
		if c.hedged() {
			return c.openHedged(desc, cc, method, streamer, opts)
		}
		cs, err := streamer(c.attemptContext(1), desc, cc, method, opts...)
		n := 1
		for err != nil {
			n++
			ok, rerr := c.retry(n, err)
			if !ok {
				return nil, rerr
			}
			cs, err = streamer(c.attemptContext(n), desc, cc, method, opts...)
		}
		return &retryStream{call: c, desc: desc, cc: cc, streamer: streamer, opts: opts, attempt: n, cur: cs}, nil
	}
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

	// Of a hedged call: its hedging delay (0: not hedged this time),
	// whether the latency of its first attempt's first message is
	// measured, when that attempt was opened, and the cancel of the current
	// attempt's context.
	hedgeDelay time.Duration
	learnFirst bool
	opened     time.Time
	cancel     context.CancelFunc

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
		if err != nil && s.cancel != nil {
			s.cancel() // the stream has ended
		}
		return err
	}
	if s.hedgeDelay > 0 {
		s.received = true
		err := s.hedgeFirst(m)
		if err != nil {
			s.cancel()
		}
		return err
	}
	err := s.cur.RecvMsg(m)
	if s.learnFirst {
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
	if err != nil && s.cancel != nil {
		s.cancel() // the stream has ended
	}
	return err
}

// reopen opens the stream again and sends what was sent on the failed one.
func (s *retryStream) reopen() error {
	cs, err := s.streamer(s.call.attemptContext(s.attempt), s.desc, s.cc, s.call.method, s.opts...)
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
