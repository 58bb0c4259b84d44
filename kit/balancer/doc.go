// Package balancer is grpckit's client-side load-balancing policy,
// kit_weighted ([Name]), registered with grpc-go when the package is
// imported. It spreads calls over a target's endpoints by weight (the base
// weight of grpc-go's standard endpoint attribute,
// google.golang.org/grpc/experimental/balancer/weight, times a multiplier),
// halves the weight of an endpoint that fails, ejects one that keeps
// failing, lets it back in slowly, and routes over every READY endpoint
// rather than fail calls when too many are ejected. Its parameters are the
// JSON [Config] of the service config.
//
// The policy depends on no registry: any resolver feeds it, e.g. the
// consul:/// resolver of package kit/resolver or grpc-go's manual resolver
// in tests. Nothing is process-wide: what differs per ClientConn comes with
// its resolver state, a [Monitor] that collects the balancer's statistics
// ([SetMonitor]) and a logger for its events ([SetLogger]); kit clients
// pass theirs this way.
package balancer
