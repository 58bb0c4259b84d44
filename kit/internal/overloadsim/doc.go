// Package overloadsim runs the overload scenarios of issue 15 in one
// process, over loopback gRPC: a server in front of a resource with a fixed
// capacity (a pool of slots, each call holding one for a fixed time, and
// waiting for a slot honouring the caller's context, like a database pool),
// called by several clients with an open-loop load at multiples of that
// capacity. Each scenario runs side by side for bare grpc-go, kit as it was
// before the overload layer (no concurrency limit, no throttle, every
// DEADLINE_EXCEEDED a failure for the breaker and kit_weighted) and kit
// with its defaults.
//
// kit/internal/cmd/benchoverload prints the tables (make bench-overload);
// the tests of this package assert the targets.
package overloadsim
