package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric families of kit's telemetry layer (the otelgrpc instruments, as
// the admin /metrics serves them). A histogram's sample count is its number
// of calls: on the server every call that reached it, on the client every
// call made, counted once whatever its retries.
const (
	serverCalls = "rpc_server_call_duration_seconds"
	clientCalls = "rpc_client_call_duration_seconds"
)

// scrape reads the admin /metrics of an instance.
func scrape(ctx context.Context, admin string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET http://%s/metrics: %s", admin, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET http://%s/metrics: %w", admin, err)
	}
	return fams, nil
}

// count sums the samples of family whose labels include match: counter
// values, or the sample counts of histograms.
func count(fams map[string]*dto.MetricFamily, family string, match map[string]string) float64 {
	f, ok := fams[family]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		if !hasLabels(m, match) {
			continue
		}
		switch {
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, match map[string]string) bool {
	for k, v := range match {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// countAll scrapes every instance and sums count over them.
func countAll(ctx context.Context, insts []*instance, family string, match map[string]string) (float64, error) {
	var sum float64
	for _, inst := range insts {
		fams, err := scrape(ctx, inst.admin)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", inst.name, err)
		}
		sum += count(fams, family, match)
	}
	return sum, nil
}
