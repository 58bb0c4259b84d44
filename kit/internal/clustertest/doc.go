// Package clustertest holds the tests that run against a real Consul
// cluster (consultest.StartCluster: three servers and two client agents in
// dc1, a server and a client agent in dc2, over the WAN, ACLs on): the
// registry and the resolver through a node's client agent, the loss of an
// agent and of the leader, datacenters and failover. Its TestMain starts
// the cluster once for all of them; under -short they are skipped.
package clustertest
