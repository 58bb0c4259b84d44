package consul

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/registry"
)

func TestRegistrationDefinition(t *testing.T) {
	r := New(nil, WithCheckInterval(3*time.Second, 2*time.Second), WithDeregisterCriticalAfter(time.Second))
	got := r.registration(registry.Instance{ID: "u1", Name: "user", Address: "10.0.0.1", Port: 9000,
		Tags: []string{"v2"}, Meta: map[string]string{"zone": "a"}, Weights: registry.Weights{Passing: 10}})
	want := &api.AgentServiceRegistration{
		ID: "u1", Name: "user", Address: "10.0.0.1", Port: 9000, Tags: []string{"v2"}, Meta: map[string]string{"zone": "a"},
		Weights: &api.AgentWeights{Passing: 10, Warning: 1},
		Check: &api.AgentServiceCheck{
			CheckID: "service:u1:grpc", Name: "gRPC health 10.0.0.1:9000", GRPC: "10.0.0.1:9000",
			Interval: "3s", Timeout: "2s", DeregisterCriticalServiceAfter: "1m0s", Status: api.HealthPassing,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registration (-want +got):\n%s", diff)
	}
}
