// Package consultest runs real Consul agents for tests and local stacks, as
// net/http/httptest runs real HTTP servers: no fake, the same binary and
// HTTP API that production uses.
//
// [Start] gives a test a fresh `consul agent -dev` and stops it when the
// test ends; [Client] returns an API client for it:
//
//	func TestRegister(t *testing.T) {
//		agent := consultest.Start(t) // skipped under -short
//		reg := consul.New(consultest.Client(t, agent))
//		...
//	}
//
// [StartAgent] starts one for a program that manages its life itself (a
// local stack, a chaos harness), on a fixed HTTP address if it asks for one.
//
// Every agent is a dev agent: one server that is its own leader, state in
// memory only (a stop or [Agent.Restart] loses every registration and KV
// entry), ACLs off unless [StartACL] or [Config.ManagementToken] turn them
// on with the default policy deny, DNS and Consul's own gRPC ports off, its cluster ports
// on 127.0.0.1 and its HTTP API where [Config.HTTPAddr] says (a 127.0.0.1
// port by default). Consul cannot listen on port 0 and report what it got,
// so the ports are picked free a moment before the agent starts; [Start]
// tries again on a collision.
//
// The package itself downloads nothing: it needs a consul binary, which
// [Find] looks for in $CONSUL_BIN, then on PATH, then asks the project's
// scripts/ensure-consul.sh for (the grpckit repository has one that builds
// the pinned version once and caches it).
package consultest
