package balancer_test

import (
	"google.golang.org/grpc/serviceconfig"

	kitbalancer "github.com/grpckit/grpckit/kit/balancer"
)

func lbConfig(c any) serviceconfig.LoadBalancingConfig {
	if c == nil {
		return nil
	}
	return c.(*kitbalancer.Config)
}
