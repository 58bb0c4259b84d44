// Package balancer holds grpckit's client-side load balancing: the "consul"
// resolver, which turns registry updates into resolver state for
// targets like consul:///user?tag=v2&dc=eu1, with each endpoint's base weight in
// grpc-go's standard attribute (google.golang.org/grpc/experimental/balancer/weight).
//
// Importing the package registers the resolver with grpc-go, backed by the Consul
// agent named in the target's authority (consul://host:port/name) or by
// CONSUL_HTTP_ADDR. [NewResolverBuilder] builds one over any [registry.Discovery]
// for use with grpc.WithResolvers.
package balancer
