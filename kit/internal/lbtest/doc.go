// Package lbtest drives grpc-go load-balancing policies without a network:
// a fake balancer.ClientConn whose SubConns become READY on Connect, so tests
// and benchmarks can build a policy's picker (kit_weighted, round_robin,
// ...) over any number of endpoints and pick from it directly.
package lbtest
