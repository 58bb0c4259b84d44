package resolver

import (
	"fmt"
	"log/slog"

	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
)

func init() {
	resolver.Register(&Builder{})
}

// consulDiscovery is the discovery of a target when the builder has none: a
// Consul registry on the agent of the target's authority, else on the
// agent the environment names (CONSUL_HTTP_ADDR). The registry is the
// resolver's own; closing it is the returned func.
func consulDiscovery(t Target, logger *slog.Logger) (registry.Discovery, func(), error) {
	reg, err := consul.NewFromAddress(t.Agent, consul.WithLogger(logger))
	if err != nil {
		return nil, nil, fmt.Errorf("consul resolver: %w", err)
	}
	return reg, reg.Close, nil
}
