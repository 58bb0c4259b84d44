// Package resolver is grpckit's "consul" name resolver: it turns the
// instance sets of a [registry.Discovery] into grpc-go resolver state for
// targets like consul:///user?tag=v2&dc=eu1&failover=eu2, one endpoint per
// instance, each carrying the instance's base weight in grpc-go's standard
// attribute (google.golang.org/grpc/experimental/balancer/weight), which
// the kit_weighted policy (package kit/balancer) and any other
// weight-aware policy read.
//
// Importing the package registers the scheme with grpc-go, backed by the
// Consul agent named in the target's authority (consul://host:port/name) or
// by CONSUL_HTTP_ADDR. [NewBuilder] builds one over any [registry.Discovery]
// (the in-memory registry in tests, a Consul registry the program already
// has) for use with grpc.WithResolvers.
//
// # Datacenter failover
//
// A target may list failover datacenters: consul:///user?failover=dc2,dc3,
// with or without dc=. Its datacenters in order are the local one (the dc=
// one, else the agent's own, named [LocalDatacenter] in logs and stats)
// then the list; the resolver watches each of them. Calls go to the first
// datacenter whose instances include a passing one, else to the first with
// any instance (in warning), else to the local one (no instance: calls fail
// at once). They come back as soon as a datacenter ahead in the order has
// a passing instance again, and an empty set never replaces another
// datacenter's instances. Each switch is logged (a warning when calls leave
// the local datacenter, information when they come back), and the state
// carries the active datacenter and the order ([balancer.SetDatacenters]):
// kit_weighted shows them in its stats and kit on /debug/kit and /metrics.
//
// A resolver never leaves calls waiting for ever: until the discovery has
// answered once (in any of the target's datacenters), its errors are
// reported to grpc-go, so calls fail with UNAVAILABLE and the cause; after
// that, an outage keeps each datacenter's last good set.
package resolver
