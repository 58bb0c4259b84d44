// Package registry defines how grpckit services announce themselves and find
// each other: an [Instance] is one reachable copy of a service, a [Registrar]
// announces instances and a [Discovery] watches the instances of a service.
//
// Implementations live in sub-packages: [github.com/grpckit/grpckit/kit/registry/consul]
// talks to a Consul agent, [github.com/grpckit/grpckit/kit/registry/memory] keeps
// everything in process for tests and single-process programs.
package registry
