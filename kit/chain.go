package kit

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// Kit's own unary chains run through these instead of grpc-go's chaining,
// which allocates a closure per interceptor per call. A pooled per-call state
// carries one continuation per level, made once per pooled state, so a call
// through the chain allocates nothing. This relies on what kit's own layers
// do: call their handler (or invoker) only during their own call, never after
// returning; the retry layer may call its invoker several times, which the
// per-level continuations allow.

// unaryServerChain runs server interceptors outermost first.
type unaryServerChain struct {
	ints []grpc.UnaryServerInterceptor
	pool sync.Pool // *serverCall
}

type serverCall struct {
	info  *grpc.UnaryServerInfo
	final grpc.UnaryHandler
	next  []grpc.UnaryHandler // next[k] continues after interceptor k
}

func chainUnaryServer(ints []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	c := &unaryServerChain{ints: ints}
	c.pool.New = func() any {
		sc := &serverCall{next: make([]grpc.UnaryHandler, len(ints))}
		for k := range ints {
			if k == len(ints)-1 {
				sc.next[k] = func(ctx context.Context, req any) (any, error) { return sc.final(ctx, req) }
				continue
			}
			sc.next[k] = func(ctx context.Context, req any) (any, error) {
				return c.ints[k+1](ctx, req, sc.info, sc.next[k+1])
			}
		}
		return sc
	}
	return c.intercept
}

func (c *unaryServerChain) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	sc := c.pool.Get().(*serverCall)
	sc.info, sc.final = info, handler
	defer c.release(sc)
	return c.ints[0](ctx, req, info, sc.next[0])
}

func (c *unaryServerChain) release(sc *serverCall) {
	sc.info, sc.final = nil, nil
	c.pool.Put(sc)
}

// unaryClientChain runs client interceptors outermost first.
type unaryClientChain struct {
	ints []grpc.UnaryClientInterceptor
	pool sync.Pool // *clientCall
}

type clientCall struct {
	final grpc.UnaryInvoker
	next  []grpc.UnaryInvoker // next[k] continues after interceptor k
}

func chainUnaryClient(ints []grpc.UnaryClientInterceptor) grpc.UnaryClientInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	c := &unaryClientChain{ints: ints}
	c.pool.New = func() any {
		cc := &clientCall{next: make([]grpc.UnaryInvoker, len(ints))}
		for k := range ints {
			if k == len(ints)-1 {
				cc.next[k] = func(ctx context.Context, method string, req, reply any, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
					return cc.final(ctx, method, req, reply, conn, opts...)
				}
				continue
			}
			cc.next[k] = func(ctx context.Context, method string, req, reply any, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
				return c.ints[k+1](ctx, method, req, reply, conn, cc.next[k+1], opts...)
			}
		}
		return cc
	}
	return c.intercept
}

func (c *unaryClientChain) intercept(ctx context.Context, method string, req, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	cc := c.pool.Get().(*clientCall)
	cc.final = invoker
	defer c.release(cc)
	return c.ints[0](ctx, method, req, reply, conn, cc.next[0], opts...)
}

func (c *unaryClientChain) release(cc *clientCall) {
	cc.final = nil
	c.pool.Put(cc)
}
