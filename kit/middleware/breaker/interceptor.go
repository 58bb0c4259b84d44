package breaker

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
)

// UnaryClientInterceptor returns an interceptor that passes each call
// through the breaker of (cc.Target(), method) and reports the outcome of
// the error the call returned.
func (b *Breakers) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		br := b.get(cc.Target(), method)
		done, err := br.cb.Allow()
		if err != nil {
			return br.reject(err)
		}
		start := b.start(br)
		err = invoker(ctx, method, req, reply, cc, opts...)
		done(b.verdict(br, start, err))
		return err
	}
}

// StreamClientInterceptor returns an interceptor that passes each stream
// through the breaker of (cc.Target(), method). The outcome reported is the
// stream's final status, observed with [grpc.OnFinish], or the error of
// stream creation when the stream could not be created.
func (b *Breakers) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		br := b.get(cc.Target(), method)
		done, err := br.cb.Allow()
		if err != nil {
			return nil, br.reject(err)
		}
		o := &outcome{b: b, br: br, start: b.start(br), done: done}
		// Full slice expression: never write into the caller's array.
		opts = append(opts[:len(opts):len(opts)], grpc.OnFinish(o.report))
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			// grpc-go also calls OnFinish when it created the stream's
			// state, but not when a later interceptor failed first.
			o.report(err)
			return nil, err
		}
		return cs, nil
	}
}

// outcome reports a stream's outcome to its breaker once, judged from the
// stream's start.
type outcome struct {
	b        *Breakers
	br       *breaker
	start    int64
	done     func(error)
	reported atomic.Bool
}

func (o *outcome) report(err error) {
	if o.reported.CompareAndSwap(false, true) {
		o.done(o.b.verdict(o.br, o.start, err))
	}
}
