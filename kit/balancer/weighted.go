package balancer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// Name is the name of the kit_weighted load-balancing policy.
const Name = "kit_weighted"

func init() {
	balancer.Register(builder{})
}

// builder builds kit_weighted balancers. What differs per ClientConn (the
// Monitor, the logger) comes with the resolver state, see [SetMonitor].
type builder struct{}

func (builder) Name() string { return Name }

func (builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return ParseConfig(js)
}

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	logger := slog.Default()
	ctx, cancel := context.WithCancel(context.Background())
	wb := &weightedBalancer{
		ClientConn: cc,
		logger:     logger,
		tracker:    newTracker(DefaultConfig(), newClock(), logger, opts.Target.String(), new(Events)),
		cancel:     cancel,
		done:       make(chan struct{}),
	}
	wb.child = endpointsharding.NewBalancer(wb, opts, balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	go func() {
		defer close(wb.done)
		wb.tracker.run(ctx)
	}()
	return wb
}

// weightedBalancer delegates connections to endpointsharding with a
// pick_first child per endpoint, and builds its own picker over the READY
// children. It embeds the parent ClientConn and stands in for it toward
// endpointsharding, to see the children's states. grpc-go calls its
// balancer.Balancer methods one at a time, which guards monitor.
type weightedBalancer struct {
	balancer.ClientConn
	logger  *slog.Logger // when the resolver state carries none
	monitor *Monitor     // the tracker is attached to it; nil if none
	child   balancer.Balancer
	tracker *tracker
	cancel  context.CancelFunc
	done    chan struct{} // closed when the control loop returned
}

func (wb *weightedBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, ok := s.BalancerConfig.(*Config)
	if !ok {
		if s.BalancerConfig != nil {
			return fmt.Errorf("%s: unexpected balancer config of type %T", Name, s.BalancerConfig)
		}
		cfg = DefaultConfig()
	}
	wb.follow(s.ResolverState)
	wb.tracker.setConfig(cfg)
	wb.tracker.setEndpoints(s.ResolverState.Endpoints)
	return wb.child.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

// ResolverError passes err to the children; with no endpoint known yet it
// fails calls with err (endpointsharding would leave them waiting).
func (wb *weightedBalancer) ResolverError(err error) {
	if !wb.tracker.hasEndpoints() {
		wb.ClientConn.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{err}})
		return
	}
	wb.child.ResolverError(err)
}

func (wb *weightedBalancer) UpdateSubConnState(sc balancer.SubConn, s balancer.SubConnState) {
	wb.child.UpdateSubConnState(sc, s)
}

// UpdateState receives endpointsharding's aggregated state: it records the
// READY children and hands grpc a picker that reads the tracker's snapshot.
func (wb *weightedBalancer) UpdateState(s balancer.State) {
	wb.tracker.setChildStates(endpointsharding.ChildStatesFromPicker(s.Picker), s.Picker)
	wb.ClientConn.UpdateState(balancer.State{ConnectivityState: s.ConnectivityState, Picker: picker{wb.tracker}})
}

// follow attaches the tracker to the Monitor and logger s carries
// ([SetMonitor], [SetLogger]) and records its datacenters
// ([SetDatacenters]).
func (wb *weightedBalancer) follow(s resolver.State) {
	if m := monitorOf(s); m != wb.monitor {
		if wb.monitor != nil {
			wb.monitor.remove(wb.tracker)
		}
		if wb.monitor = m; m != nil {
			m.add(wb.tracker)
		}
	}
	logger := loggerOf(s)
	if logger == nil {
		logger = wb.logger
	}
	wb.tracker.setLogger(logger)
	wb.tracker.setDatacenters(datacentersOf(s))
}

func (wb *weightedBalancer) ExitIdle() { wb.child.ExitIdle() }

func (wb *weightedBalancer) Close() {
	wb.cancel()
	<-wb.done
	if wb.monitor != nil {
		wb.monitor.remove(wb.tracker)
	}
	wb.child.Close()
}
