package kit

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/grpckit/grpckit/kit/balancer"
)

// observeBalancers exposes the kit_weighted balancers that stats returns
// (those of a server's WithAdminOf clients) on mp, read when the metrics are
// collected (a scrape of /metrics): grpckit.balancer.events counts state
// changes per target and event, grpckit.balancer.endpoints counts
// endpoints per target and state, and for targets with a datacenter
// failover list grpckit.balancer.failovers counts the changes of active
// datacenter per target and datacenter changed to, and
// grpckit.balancer.datacenter is 1 for the active datacenter of a target
// and 0 for its others.
func observeBalancers(mp metric.MeterProvider, stats func() []balancer.TargetStats) (metric.Registration, error) {
	var eventNames, stateNames []string
	for ev := range (balancer.EventCounts{}).All() {
		eventNames = append(eventNames, string(ev))
	}
	for _, st := range balancer.EndpointStates() {
		stateNames = append(stateNames, string(st))
	}
	meter := mp.Meter("github.com/grpckit/grpckit/kit/balancer")
	events, err := meter.Int64ObservableCounter("grpckit.balancer.events",
		metric.WithDescription("kit_weighted state changes, by target and event ("+strings.Join(eventNames, ", ")+")."),
		metric.WithUnit("{event}"))
	if err != nil {
		return nil, fmt.Errorf("kit: balancer metrics: %w", err)
	}
	endpoints, err := meter.Int64ObservableGauge("grpckit.balancer.endpoints",
		metric.WithDescription("kit_weighted endpoints, by target and state ("+strings.Join(stateNames, ", ")+")."),
		metric.WithUnit("{endpoint}"))
	if err != nil {
		return nil, fmt.Errorf("kit: balancer metrics: %w", err)
	}
	failovers, err := meter.Int64ObservableCounter("grpckit.balancer.failovers",
		metric.WithDescription("Changes of a target's active datacenter (failovers and switches back), by target and datacenter changed to."),
		metric.WithUnit("{switch}"))
	if err != nil {
		return nil, fmt.Errorf("kit: balancer metrics: %w", err)
	}
	active, err := meter.Int64ObservableGauge("grpckit.balancer.datacenter",
		metric.WithDescription("1 for the datacenter a target's calls go to, 0 for its other failover datacenters, by target and datacenter."),
		metric.WithUnit("{datacenter}"))
	if err != nil {
		return nil, fmt.Errorf("kit: balancer metrics: %w", err)
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, ts := range stats() {
			target := attribute.String("target", ts.Target)
			for ev, n := range ts.Events.All() {
				o.ObserveInt64(events, n, metric.WithAttributes(target, attribute.String("event", string(ev))))
			}
			states := map[balancer.EndpointState]int64{}
			for _, ep := range ts.Endpoints {
				states[ep.State]++
			}
			for _, state := range balancer.EndpointStates() {
				o.ObserveInt64(endpoints, states[state], metric.WithAttributes(target, attribute.String("state", string(state))))
			}
			if dcs := ts.Datacenters; dcs != nil {
				for _, dc := range dcs.Order {
					attrs := metric.WithAttributes(target, attribute.String("datacenter", dc))
					o.ObserveInt64(failovers, dcs.Switches[dc], attrs)
					o.ObserveInt64(active, boolInt(dc == dcs.Active), attrs)
				}
			}
		}
		return nil
	}, events, endpoints, failovers, active)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
