package overloadsim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/grpckit/grpckit/kit"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// Kind is the server and clients a scenario runs with.
type Kind int

// The kinds compared.
const (
	// Bare is grpc-go with no interceptor, round_robin over the backends.
	Bare Kind = iota
	// Before is kit's default chains as they were before the overload
	// layer: no concurrency limit, no throttle, and every
	// DEADLINE_EXCEEDED a failure for the breaker and kit_weighted.
	Before
	// New is kit's default chains.
	New
)

// Kinds are the kinds compared, in the tables' order.
var Kinds = []Kind{Bare, Before, New}

func (k Kind) String() string {
	return [...]string{"bare grpc-go", "kit before", "kit now"}[k]
}

// beforeServiceConfig is kit_weighted as it was before: every timeout a
// failure.
const beforeServiceConfig = `{"loadBalancingConfig":[{"kit_weighted":{"deadline_exceeded":"failure"}}]}`

// Backend is one server in front of its own Resource.
type Backend struct {
	Addr     string
	Res      *Resource
	Overload *overload.Server // the server's overload layer; nil without one
	stop     func()
}

// StartBackend starts a server of kind k in front of res on a loopback port.
func StartBackend(k Kind, res *Resource, name string) (*Backend, error) {
	b, err := startBackend(k, res, name)
	if err == nil {
		b.Res = res
	}
	return b, err
}

func startBackend(k Kind, res user, name string) (*Backend, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Backend{Addr: lis.Addr().String()}
	svc := &service{res: res, name: name}
	if k == Bare {
		srv := grpc.NewServer()
		testpbv1.RegisterTestServiceServer(srv, svc)
		go srv.Serve(lis)
		b.stop = srv.Stop
		return b, nil
	}
	opts := []kit.ServerOption{kit.WithServiceName(name), kit.WithAdminAddress(""), kit.WithDrain(0), kit.WithLogger(quiet)}
	if k == Before {
		opts = append(opts, kit.WithoutLayers(kit.LayerOverload))
	}
	srv, err := kit.NewServer(opts...)
	if err != nil {
		lis.Close()
		return nil, err
	}
	testpbv1.RegisterTestServiceServer(srv, svc)
	go srv.Serve(lis)
	b.Overload, _ = srv.Layer(kit.LayerOverload).(*overload.Server)
	b.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return b, nil
}

// Stop stops the server.
func (b *Backend) Stop() { b.stop() }

var quiet = slog.New(slog.DiscardHandler)

// Clients are n clients of kind k, each its own ClientConn to the backends.
type Clients struct {
	Stubs []testpbv1.TestServiceClient
	conns []*grpc.ClientConn
}

// Dial makes n clients of kind k of the backends at addrs.
func Dial(k Kind, n int, addrs []string) (*Clients, error) {
	c := &Clients{}
	for i := range n {
		r := manual.NewBuilderWithScheme(fmt.Sprintf("sim%d", i))
		state := resolver.State{}
		for _, a := range addrs {
			state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
		}
		r.InitialState(state)
		target := r.Scheme() + ":///" + strings.Join(addrs, ",")
		var cc *grpc.ClientConn
		var err error
		switch k {
		case Bare:
			cc, err = grpc.NewClient(target, grpc.WithResolvers(r),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
		case Before:
			var br *breaker.Breakers
			cfg := breaker.DefaultConfig()
			cfg.DeadlineExceeded = statuscode.DeadlineFailure
			if br, err = breaker.New(cfg); err != nil {
				break
			}
			cc, err = kit.NewClient(target, kit.WithoutLayers(kit.LayerOverload), kit.WithBreaker(br), kit.WithLogger(quiet),
				kit.WithDialOptions(grpc.WithResolvers(r), grpc.WithDefaultServiceConfig(beforeServiceConfig)))
		default:
			cc, err = kit.NewClient(target, kit.WithLogger(quiet), kit.WithDialOptions(grpc.WithResolvers(r)))
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		c.conns = append(c.conns, cc)
		c.Stubs = append(c.Stubs, testpbv1.NewTestServiceClient(cc))
	}
	return c, nil
}

// Close closes the clients.
func (c *Clients) Close() {
	for _, cc := range c.conns {
		cc.Close()
	}
}
