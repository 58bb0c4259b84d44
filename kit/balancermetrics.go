package kit

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/grpckit/grpckit/kit/balancer"
)

// observeBalancers exposes the kit_weighted balancers of the process on mp,
// read when the metrics are collected (a scrape of /metrics):
// grpckit.balancer.events counts state changes per target and event, and
// grpckit.balancer.endpoints counts endpoints per target and state.
func observeBalancers(mp metric.MeterProvider) (metric.Registration, error) {
	meter := mp.Meter("github.com/grpckit/grpckit/kit/balancer")
	events, err := meter.Int64ObservableCounter("grpckit.balancer.events",
		metric.WithDescription("kit_weighted state changes, by target and event (demotion, restoration, ejection, readmission, panic)."),
		metric.WithUnit("{event}"))
	if err != nil {
		return nil, fmt.Errorf("kit: balancer metrics: %w", err)
	}
	endpoints, err := meter.Int64ObservableGauge("grpckit.balancer.endpoints",
		metric.WithDescription("kit_weighted endpoints, by target and state (active, ramping, ejected)."),
		metric.WithUnit("{endpoint}"))
	if err != nil {
		return nil, fmt.Errorf("kit: balancer metrics: %w", err)
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, ts := range balancer.Stats() {
			target := attribute.String("target", ts.Target)
			for _, e := range []struct {
				name string
				n    int64
			}{
				{"demotion", ts.Events.Demotions}, {"restoration", ts.Events.Restorations}, {"ejection", ts.Events.Ejections},
				{"readmission", ts.Events.Readmissions}, {"panic", ts.Events.Panics},
			} {
				o.ObserveInt64(events, e.n, metric.WithAttributes(target, attribute.String("event", e.name)))
			}
			states := map[string]int64{"active": 0, "ramping": 0, "ejected": 0}
			for _, ep := range ts.Endpoints {
				states[ep.State]++
			}
			for state, n := range states {
				o.ObserveInt64(endpoints, n, metric.WithAttributes(target, attribute.String("state", state)))
			}
		}
		return nil
	}, events, endpoints)
}
