package lbtest

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// ClientConn is a fake balancer.ClientConn. State-listener calls are queued
// and run by Flush, as grpc's serializer would run them, so a policy is never
// re-entered from inside its own call. Not safe for concurrent use, except
// Picker.
type ClientConn struct {
	balancer.ClientConn // unimplemented methods panic

	queue []func()

	mu     sync.Mutex
	state  connectivity.State // guarded by mu
	picker balancer.Picker    // guarded by mu
}

// SubConn is a fake SubConn for one address.
type SubConn struct {
	balancer.SubConn
	Addr     string
	cc       *ClientConn
	listener func(balancer.SubConnState)
	health   func(balancer.SubConnState)
	ready    bool
}

// NewSubConn returns a SubConn that turns READY when connected.
func (c *ClientConn) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("lbtest: NewSubConn without addresses")
	}
	return &SubConn{Addr: addrs[0].Addr, cc: c, listener: opts.StateListener}, nil
}

// RemoveSubConn is a no-op.
func (c *ClientConn) RemoveSubConn(balancer.SubConn) {}

// UpdateAddresses is a no-op.
func (c *ClientConn) UpdateAddresses(balancer.SubConn, []resolver.Address) {}

// UpdateState records the policy's state and picker.
func (c *ClientConn) UpdateState(s balancer.State) {
	c.mu.Lock()
	c.state, c.picker = s.ConnectivityState, s.Picker
	c.mu.Unlock()
}

// ResolveNow is a no-op.
func (c *ClientConn) ResolveNow(resolver.ResolveNowOptions) {}

// Target returns "lbtest".
func (c *ClientConn) Target() string { return "lbtest" }

// MetricsRecorder returns a recorder that drops everything.
func (c *ClientConn) MetricsRecorder() estats.MetricsRecorder { return noMetrics{} }

type noMetrics struct {
	estats.UnimplementedMetricsRecorder
}

// Picker returns the last picker and connectivity state the policy reported.
func (c *ClientConn) Picker() (balancer.Picker, connectivity.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.picker, c.state
}

// Flush runs queued SubConn state changes until none is left.
func (c *ClientConn) Flush() {
	for len(c.queue) > 0 {
		f := c.queue[0]
		c.queue = c.queue[1:]
		f()
	}
}

func (c *ClientConn) enqueue(f func()) { c.queue = append(c.queue, f) }

// Connect makes the SubConn CONNECTING, then READY (at the next Flush).
func (s *SubConn) Connect() {
	if s.ready {
		return
	}
	s.ready = true
	s.cc.enqueue(func() {
		s.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		s.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		if s.health != nil {
			s.health(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		}
	})
}

// RegisterHealthListener reports READY health once the SubConn is READY.
func (s *SubConn) RegisterHealthListener(l func(balancer.SubConnState)) {
	s.health = l
	if s.ready && l != nil {
		s.cc.enqueue(func() { l(balancer.SubConnState{ConnectivityState: connectivity.Ready}) })
	}
}

// Fail makes a READY SubConn go TRANSIENT_FAILURE (at the next Flush).
func (s *SubConn) Fail() {
	s.ready = false
	s.cc.enqueue(func() {
		s.listener(balancer.SubConnState{ConnectivityState: connectivity.TransientFailure, ConnectionError: fmt.Errorf("lbtest: %s failed", s.Addr)})
	})
}

// GetOrBuildProducer is not supported: it returns no producer.
func (s *SubConn) GetOrBuildProducer(balancer.ProducerBuilder) (balancer.Producer, func()) {
	return nil, func() {}
}

// Shutdown is a no-op.
func (s *SubConn) Shutdown() {}

// UpdateAddresses is a no-op.
func (s *SubConn) UpdateAddresses([]resolver.Address) {}

// Build builds the policy registered as name over endpoints, with cfg (nil
// for none), connects every endpoint and returns the READY picker and the
// balancer (Close it when done).
func Build(name string, cfg serviceconfig.LoadBalancingConfig, endpoints []resolver.Endpoint) (balancer.Picker, balancer.Balancer, error) {
	b := balancer.Get(name)
	if b == nil {
		return nil, nil, fmt.Errorf("lbtest: no balancer %q registered", name)
	}
	cc := &ClientConn{}
	bal := b.Build(cc, balancer.BuildOptions{})
	if err := bal.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: resolver.State{Endpoints: endpoints}, BalancerConfig: cfg,
	}); err != nil {
		bal.Close()
		return nil, nil, err
	}
	cc.Flush()
	p, st := cc.Picker()
	if st != connectivity.Ready {
		bal.Close()
		return nil, nil, fmt.Errorf("lbtest: %s is %v after connecting, want READY", name, st)
	}
	return p, bal, nil
}

// Endpoints returns n single-address endpoints named ep0 ... ep<n-1>.
func Endpoints(n int) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, n)
	for i := range eps {
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: fmt.Sprintf("ep%d", i)}}}
	}
	return eps
}
