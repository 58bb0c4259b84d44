package resolver

import (
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/registry"
)

// State turns an instance set into resolver state: one endpoint per instance,
// carrying the instance's base weight ([registry.Instance.Weight]) in
// grpc-go's weight attribute.
func State(set []registry.Instance) resolver.State {
	eps := make([]resolver.Endpoint, 0, len(set))
	for _, inst := range set {
		ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: inst.HostPort()}}}
		eps = append(eps, weight.Set(ep, weight.EndpointInfo{Weight: inst.Weight()}))
	}
	return resolver.State{Endpoints: eps}
}
