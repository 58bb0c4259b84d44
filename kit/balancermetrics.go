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
// changes per target and event, and grpckit.balancer.endpoints counts
// endpoints per target and state.
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
		}
		return nil
	}, events, endpoints)
}
