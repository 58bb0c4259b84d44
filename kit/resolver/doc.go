// Package resolver is grpckit's "consul" name resolver: it turns the
// instance sets of a [registry.Discovery] into grpc-go resolver state for
// targets like consul:///user?tag=v2&dc=eu1, one endpoint per instance, each
// carrying the instance's base weight in grpc-go's standard attribute
// (google.golang.org/grpc/experimental/balancer/weight), which the
// kit_weighted policy (package kit/balancer) and any other weight-aware
// policy read.
//
// Importing the package registers the scheme with grpc-go, backed by the
// Consul agent named in the target's authority (consul://host:port/name) or
// by CONSUL_HTTP_ADDR. [NewBuilder] builds one over any [registry.Discovery]
// (the in-memory registry in tests, a Consul registry the program already
// has) for use with grpc.WithResolvers.
//
// A resolver never leaves calls waiting for ever: until the discovery has
// answered once, its errors are reported to grpc-go, so calls fail with
// UNAVAILABLE and the cause; after that, an outage keeps the last good set.
package resolver
