package main

import (
	"context"
	"errors"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	_ "google.golang.org/grpc/balancer/roundrobin" // round_robin
	_ "google.golang.org/grpc/xds"                 // outlier_detection_experimental

	_ "github.com/grpckit/grpckit/kit/balancer" // kit_weighted
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// suite lists the rows of the side-by-side table, bare grpc-go first: the
// floor (raw TCP), bare grpc-go, grpc-go's policies and kit_weighted over 5
// backends, and kit's default chains with and without tracing.
func suite() []named {
	return []named{
		{"bare grpc-go (1 backend)", bare},
		{"raw TCP echo, 1 byte each way (the floor)", tcpEcho},
		{"grpc-go round_robin over 5", overFive(`{"loadBalancingConfig":[{"round_robin":{}}]}`)},
		{"grpc-go outlier detection (round_robin child) over 5", overFive(`{"loadBalancingConfig":[{"outlier_detection_experimental":{"successRateEjection":{},"failurePercentageEjection":{},"childPolicy":[{"round_robin":{}}]}}]}`)},
		{"kit_weighted over 5", overFive(`{"loadBalancingConfig":[{"kit_weighted":{}}]}`)},
		{"kit default chains (metrics on, no exporter)", kitDefault(nil)},
		{"kit default chains + tracing (AlwaysSample)", kitDefault(traced)},
	}
}

// tcpEcho is a TCP server echoing one byte per request: what a call costs
// without any RPC framework. Concurrent callers take connections from a
// pool, one call at a time on each.
func tcpEcho() (caller, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var b [1]byte
				for {
					if _, err := io.ReadFull(c, b[:]); err != nil {
						return
					}
					if _, err := c.Write(b[:]); err != nil {
						return
					}
				}
			}()
		}
	}()
	const poolSize = 128
	pool := make(chan net.Conn, poolSize)
	var conns []net.Conn
	for range poolSize {
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			lis.Close()
			for _, c := range conns {
				c.Close()
			}
			return nil, nil, err
		}
		conns = append(conns, c)
		pool <- c
	}
	call := func(ctx context.Context) error {
		var c net.Conn
		select {
		case c = <-pool:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { pool <- c }()
		var b = [1]byte{'x'}
		if _, err := c.Write(b[:]); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return err
		}
		if b[0] != 'x' {
			return errors.New("tcp echo: wrong byte")
		}
		return nil
	}
	return call, func() {
		lis.Close()
		for _, c := range conns {
			c.Close()
		}
	}, nil
}

// overFive is bare grpc-go over 5 greeter backends with serviceConfig's
// load-balancing policy.
func overFive(serviceConfig string) setup {
	return func() (caller, func(), error) {
		var servers []*grpc.Server
		stop := func() {
			for _, s := range servers {
				s.Stop()
			}
		}
		var eps []resolver.Endpoint
		for range 5 {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				stop()
				return nil, nil, err
			}
			srv := grpc.NewServer()
			greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil, greeter.WithInstance("bench")))
			go srv.Serve(lis)
			servers = append(servers, srv)
			eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: lis.Addr().String()}}})
		}
		r := manual.NewBuilderWithScheme("bench")
		r.InitialState(resolver.State{Endpoints: eps})
		cc, err := grpc.NewClient("bench:///five", grpc.WithResolvers(r),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(serviceConfig))
		if err != nil {
			stop()
			return nil, nil, err
		}
		client := greeterv1.NewGreeterServiceClient(cc)
		call := func(ctx context.Context) error {
			_, err := client.SayHello(ctx, request)
			return err
		}
		return call, func() { cc.Close(); stop() }, nil
	}
}
