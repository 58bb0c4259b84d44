package kittest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// NewMeterProvider returns a meter provider that reports to the returned
// manual reader; it is shut down when the test ends.
func NewMeterProvider(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp, reader
}

// MetricSums collects reader and returns the total of every int64 sum
// (counters and up-down counters) by instrument name, over all attribute
// sets. Instruments of other kinds are left out.
func MetricSums(t testing.TB, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	got := make(map[string]int64)
	for _, m := range collect(t, reader) {
		if s, ok := m.Data.(metricdata.Sum[int64]); ok {
			for _, dp := range s.DataPoints {
				got[m.Name] += dp.Value
			}
		}
	}
	return got
}

// MetricSumsBy collects reader and returns the int64 sum named name,
// totalled by the values of the attributes keys, joined with spaces (an
// absent attribute reads as ""). It fails the test when name is not an
// int64 sum; it returns an empty map when nothing was recorded.
func MetricSumsBy(t testing.TB, reader sdkmetric.Reader, name string, keys ...attribute.Key) map[string]int64 {
	t.Helper()
	got := make(map[string]int64)
	for _, m := range collect(t, reader) {
		if m.Name != name {
			continue
		}
		s, ok := m.Data.(metricdata.Sum[int64])
		if !ok {
			t.Fatalf("kittest: metric %s is a %T, not an int64 sum", name, m.Data)
		}
		for _, dp := range s.DataPoints {
			values := make([]string, len(keys))
			for i, k := range keys {
				if v, ok := dp.Attributes.Value(k); ok {
					values[i] = v.Emit()
				}
			}
			got[strings.Join(values, " ")] += dp.Value
		}
	}
	return got
}

func collect(t testing.TB, reader sdkmetric.Reader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("kittest: collecting metrics: %v", err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		out = append(out, sm.Metrics...)
	}
	return out
}
