// Package kittest holds what the kit's tests share: an in-process gRPC
// server and client over bufconn ([Serve], [StartServer]), an
// implementation of the kit's test service with faults a test can set
// ([Service]), an in-memory store that counts its writes ([Store]), a
// meter provider with a manual reader and the sums read from it
// ([NewMeterProvider], [MetricSums], [MetricSumsBy]), polling with a
// deadline ([WaitFor]) and an in-memory SQL database for dedupe.Journal
// ([NewSQLDB]). Everything that starts something stops it with
// t.Cleanup.
//
// The kit tests itself on its own test proto
// ([github.com/grpckit/grpckit/kit/internal/testpb/v1]) and this package,
// never on the example services. Only tests import it.
package kittest
