// Package consul implements [registry.Registrar] and [registry.Discovery] on a
// Consul agent through github.com/hashicorp/consul/api.
//
// Registration uses Consul's native gRPC health check (grpc.health.v1) on the
// instance's own address, with DeregisterCriticalServiceAfter so a crashed
// instance eventually leaves the catalog. While an instance is registered, a
// keeper goroutine follows it with blocking queries on the local agent and
// registers it again when the agent lost it (agent restart, catalog wipe).
//
// Watching follows /v1/health/service/:name with blocking queries, applying the
// index rules of Consul's documentation: the index is reset to 0 when it goes
// backwards, an answer carrying index 0 is treated as index 1 so the loop never
// spins on non-blocking queries, and queries are spaced by a minimum interval
// so a flapping catalog cannot make the loop spin. Critical instances are left
// out, warning instances are kept with [registry.HealthWarning]. When Consul
// cannot be reached the watcher reports the error once and retries with capped,
// jittered backoff; the caller keeps its last good set.
//
// With Consul's ACLs on, a request Consul refuses (403) is an error
// wrapping [ErrACLRefused] that says whether Consul does not know the token
// or which right it lacks, on registration and on a watch alike; an empty
// answer is checked against the token ([Registry.CheckToken]) before it is
// reported, since Consul answers a token that may read nothing with an
// empty list. [ServiceRules] are the rights a kit service's token needs,
// and [CreateServiceToken] makes one.
package consul
