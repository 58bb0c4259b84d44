package main

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	kitbalancer "github.com/grpckit/grpckit/kit/balancer"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// fault is what a backend does to calls.
type fault int32

const (
	healthy     fault = iota
	unavailable       // every call fails with UNAVAILABLE
	blackhole         // calls hang until their deadline
	tenPercent        // every tenth call fails with UNAVAILABLE
)

// injectedMsg marks the servers' own errors, to tell them from errors the
// client side makes up.
const injectedMsg = "injected fault"

// backend is one loopback server of the kit's test service with a fault
// switch.
type backend struct {
	addr  string
	srv   *grpc.Server
	lis   net.Listener
	fault atomic.Int32
	calls atomic.Int64
	// delay holds every call this long before it is answered; slowEvery,
	// when above 0, holds only every slowEvery-th call.
	delay     atomic.Int64
	slowEvery atomic.Int64
}

func startBackends(n int) ([]*backend, error) {
	var bs []*backend
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stopBackends(bs)
			return nil, err
		}
		b := &backend{addr: lis.Addr().String(), lis: lis}
		b.srv = grpc.NewServer(grpc.UnaryInterceptor(b.intercept))
		testpbv1.RegisterTestServiceServer(b.srv, echo{addr: b.addr})
		go b.srv.Serve(lis)
		bs = append(bs, b)
	}
	return bs, nil
}

func stopBackends(bs []*backend) {
	for _, b := range bs {
		b.srv.Stop()
	}
}

func (b *backend) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	n := b.calls.Add(1)
	if d := time.Duration(b.delay.Load()); d > 0 {
		if every := b.slowEvery.Load(); every <= 0 || n%every == 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
	}
	switch fault(b.fault.Load()) {
	case unavailable:
		return nil, status.Error(codes.Unavailable, injectedMsg)
	case blackhole:
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case tenPercent:
		if n%10 == 0 {
			return nil, status.Error(codes.Unavailable, injectedMsg)
		}
	}
	return h(ctx, req)
}

// echo answers Echo with the request's message and the backend's address:
// as little work per call as a real handler can do.
type echo struct {
	testpbv1.UnimplementedTestServiceServer
	addr string
}

func (e echo) Echo(_ context.Context, req *testpbv1.EchoRequest) (*testpbv1.EchoResponse, error) {
	return &testpbv1.EchoResponse{Message: req.GetMessage(), Server: e.addr}, nil
}

// serviceConfigs are the policies compared, by display name.
var serviceConfigs = []struct{ name, config string }{
	{"round_robin", `{"loadBalancingConfig":[{"round_robin":{}}]}`},
	{"least_request", `{"loadBalancingConfig":[{"least_request_experimental":{}}]}`},
	{"outlier_detection", `{"loadBalancingConfig":[{"outlier_detection_experimental":{"successRateEjection":{},"failurePercentageEjection":{},"childPolicy":[{"round_robin":{}}]}}]}`},
	{"kit_weighted", `{"loadBalancingConfig":[{"kit_weighted":{}}]}`},
}

// dial returns a client over the backends with the given service config. A
// kit_weighted balancer reports to mon, unless mon is nil.
func dial(bs []*backend, serviceConfig string, mon *kitbalancer.Monitor, opts ...grpc.DialOption) (*grpc.ClientConn, testpbv1.TestServiceClient, error) {
	r := manual.NewBuilderWithScheme("bench")
	var eps []resolver.Endpoint
	for _, b := range bs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.addr}}})
	}
	state := resolver.State{Endpoints: eps}
	if mon != nil {
		state = kitbalancer.SetMonitor(state, mon)
	}
	r.InitialState(state)
	opts = append([]grpc.DialOption{grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig)}, opts...)
	cc, err := grpc.NewClient("bench:///backends", opts...)
	if err != nil {
		return nil, nil, err
	}
	return cc, testpbv1.NewTestServiceClient(cc), nil
}

var errNotReady = errors.New("backends not all reachable")

// warm makes calls until every backend answered one.
func warm(client testpbv1.TestServiceClient, bs []*backend) error {
	seen := map[string]bool{}
	for range 10000 {
		resp, err := client.Echo(context.Background(), &testpbv1.EchoRequest{Message: "warm"}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		seen[resp.GetServer()] = true
		if len(seen) == len(bs) {
			return nil
		}
	}
	return errNotReady
}
