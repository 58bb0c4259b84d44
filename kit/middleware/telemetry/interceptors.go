package telemetry

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpckit/grpckit/kit/middleware"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The interceptors record the RPC metrics, make the spans when a span
// exporter runs, and carry the caller's trace context and baggage through
// (W3C traceparent and baggage in the metadata) whether spans are recorded
// or not, so that a service without an exporter does not break the traces
// of its callers.
//
// Where they go: the server's interceptors first of its chain, so that a
// call is timed and its span covers every other layer, with the answer it
// got from them (a panic turned into INTERNAL by a recovery layer inside
// included). On the client, the metrics interceptors first, so that a call
// is counted once with its final outcome, retries and the time they took
// included; the attempt interceptors last, right before grpc-go sends, so
// that every attempt (a retry, a hedge) is a span of its own, the parent of
// the server span it reaches, as with otelgrpc's stats handler.
// [Telemetry.ServerOptions] and [Telemetry.DialOptions] install them so on
// a bare grpc-go server or client.
//
// A call is timed from the interceptor's start to its end: on the server
// that leaves out reading the request and writing the response, which
// otelgrpc's stats handler includes.

// UnaryServerInterceptor records rpc.server.call.duration and the server
// span of unary calls.
func (t *Telemetry) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	m, tr := t.serverMetrics, t.tracing
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = t.extract(ctx)
		var span trace.Span
		if tr != nil {
			ctx, span = tr.start(ctx, info.FullMethod, false)
		}
		var mm *methodMetrics
		if m != nil {
			mm = m.method(info.FullMethod)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		if m != nil {
			m.record(mm, start, err, nil)
		}
		if span != nil {
			tr.end(span, err, localAddr(ctx), false)
		}
		return resp, err
	}
}

// StreamServerInterceptor records rpc.server.call.duration and the server
// span of streams, which end when the handler returns.
func (t *Telemetry) StreamServerInterceptor() grpc.StreamServerInterceptor {
	m, tr := t.serverMetrics, t.tracing
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := t.extract(ss.Context())
		var span trace.Span
		if tr != nil {
			ctx, span = tr.start(ctx, info.FullMethod, false)
		}
		if ctx != ss.Context() {
			ss = &serverStream{ServerStream: ss, ctx: ctx}
		}
		start := time.Now()
		err := handler(srv, ss)
		if m != nil {
			method := info.FullMethod
			if middleware.IsUnknownMethod(err) {
				method = otherMethod
			}
			m.record(m.method(method), start, err, nil)
		}
		if span != nil {
			tr.end(span, err, localAddr(ctx), false)
		}
		return err
	}
}

// localAddr is the server's own address of the call in ctx.
func localAddr(ctx context.Context) net.Addr {
	if p, ok := peer.FromContext(ctx); ok {
		return p.LocalAddr
	}
	return nil
}

// serverStream is a ServerStream with another context.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// unaryCall is the pooled state of a client's unary call: the call options
// passed down, with one more that has grpc-go fill in the peer the call
// reached. The options are reused once the call returns, which the layers
// inside allow by never letting an attempt outlive their own call (the
// contract of kit's fused chain).
type unaryCall struct {
	peer    peer.Peer
	peerOpt grpc.CallOption
	opts    []grpc.CallOption
}

var unaryCalls = sync.Pool{New: func() any {
	c := &unaryCall{}
	c.peerOpt = grpc.Peer(&c.peer)
	return c
}}

// withPeer returns a pooled unaryCall whose opts are opts and its own.
func withPeer(opts []grpc.CallOption) *unaryCall {
	c := unaryCalls.Get().(*unaryCall)
	c.opts = append(append(c.opts[:0], opts...), c.peerOpt)
	return c
}

func (c *unaryCall) release() {
	c.peer = peer.Peer{}
	clear(c.opts)
	unaryCalls.Put(c)
}

// UnaryClientInterceptor records rpc.client.call.duration for unary calls,
// with the address of the server that answered last; nil when metrics are
// off. A call is counted once, with its final code, whatever the layers
// inside do: a retry is not a call of its own, a call refused locally (an
// open breaker, the throttle) is one, without a server address. The layers
// inside must not let an attempt outlive their own call (see unaryCall).
func (t *Telemetry) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	m := t.clientMetrics
	if m == nil {
		return nil
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		mm := m.method(method)
		c := withPeer(opts)
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, c.opts...)
		m.record(mm, start, err, c.peer.Addr)
		c.release()
		return err
	}
}

// StreamClientInterceptor records rpc.client.call.duration for streams,
// when they end (see [endingStream]); nil when metrics are off.
func (t *Telemetry) StreamClientInterceptor() grpc.StreamClientInterceptor {
	m := t.clientMetrics
	if m == nil {
		return nil
	}
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		mm := m.method(method)
		start := time.Now()
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			m.record(mm, start, err, nil)
			return nil, err
		}
		return newEndingStream(ctx, cs, desc, func(err error, addr net.Addr) { m.record(mm, start, err, addr) }), nil
	}
}

// UnaryAttemptInterceptor makes the client span of every attempt of a
// unary call when spans are recorded, and puts the trace context and
// baggage of the call (its span's, when there is one) in its metadata.
// Like [Telemetry.UnaryClientInterceptor] it expects its invoker to be
// done with the call when it returns.
func (t *Telemetry) UnaryAttemptInterceptor() grpc.UnaryClientInterceptor {
	tr := t.tracing
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if tr == nil {
			return invoker(t.inject(ctx), method, req, reply, cc, opts...)
		}
		ctx, span := tr.start(ctx, method, true)
		c := withPeer(opts)
		err := invoker(t.inject(ctx), method, req, reply, cc, c.opts...)
		tr.end(span, err, c.peer.Addr, true)
		c.release()
		return err
	}
}

// StreamAttemptInterceptor is [Telemetry.UnaryAttemptInterceptor] for
// streams, whose spans end when they do (see [endingStream]).
func (t *Telemetry) StreamAttemptInterceptor() grpc.StreamClientInterceptor {
	tr := t.tracing
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if tr == nil {
			return streamer(t.inject(ctx), desc, cc, method, opts...)
		}
		ctx, span := tr.start(ctx, method, true)
		cs, err := streamer(t.inject(ctx), desc, cc, method, opts...)
		if err != nil {
			tr.end(span, err, nil, true)
			return nil, err
		}
		return newEndingStream(ctx, cs, desc, func(err error, addr net.Addr) { tr.end(span, err, addr, true) }), nil
	}
}

// endingStream calls onEnd once, when the stream ends: RecvMsg fails
// (io.EOF: OK) or returns the one response of a stream without server
// streaming, SendMsg or Header fails, or the call's context ends first (as
// grpc-go ends a stream whose context is done). addr is the server's.
type endingStream struct {
	grpc.ClientStream
	serverStreams bool
	onEnd         func(err error, addr net.Addr)
	stop          func() bool // stops watching ctx
	done          atomic.Bool
}

func newEndingStream(ctx context.Context, cs grpc.ClientStream, desc *grpc.StreamDesc, onEnd func(error, net.Addr)) *endingStream {
	s := &endingStream{ClientStream: cs, serverStreams: desc.ServerStreams, onEnd: onEnd}
	s.stop = context.AfterFunc(ctx, func() { s.end(status.FromContextError(ctx.Err()).Err(), true) })
	return s
}

func (s *endingStream) SendMsg(msg any) error {
	err := s.ClientStream.SendMsg(msg)
	if err != nil && err != io.EOF { // io.EOF: the status comes from RecvMsg
		s.end(err, false)
	}
	return err
}

func (s *endingStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil { // grpc-go has ended the stream
		s.end(err, false)
	}
	return md, err
}

func (s *endingStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err != nil || !s.serverStreams {
		s.end(err, false)
	}
	return err
}

// end ends the stream once; byCtx says the call comes from watching ctx,
// which may run before newEndingStream has set stop.
func (s *endingStream) end(err error, byCtx bool) {
	if !s.done.CompareAndSwap(false, true) {
		return
	}
	if !byCtx {
		s.stop()
	}
	if err == io.EOF {
		err = nil
	}
	var addr net.Addr
	if p, ok := peer.FromContext(s.ClientStream.Context()); ok { // the stream has ended: its attempt is final
		addr = p.Addr
	}
	s.onEnd(err, addr)
}
