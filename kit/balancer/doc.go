// Package balancer is grpckit's client-side load-balancing policy,
// kit_weighted ([Name]), registered with grpc-go when the package is
// imported. It spreads calls over a target's endpoints by weight (the base
// weight of grpc-go's standard endpoint attribute,
// google.golang.org/grpc/experimental/balancer/weight, times a multiplier),
// halves the weight of an endpoint that fails, ejects one that keeps
// failing, lets it back in slowly, and routes over every READY endpoint
// rather than fail calls when too many are ejected. Its parameters are the
// JSON [Config] of the service config.
//
// An endpoint is judged by how its calls end. A failure (FailureCodes:
// UNAVAILABLE and DEADLINE_EXCEEDED by default) demotes it, and
// ConsecutiveFailures in a row, or a failure ratio over the window, eject
// it. Any status the server sent ([statuscode.IsAnswer]: OK, an application
// error, RESOURCE_EXHAUSTED) is an answer, a sign of life, and ends the run
// of failures; RESOURCE_EXHAUSTED, a saturated server refusing the excess,
// also demotes the endpoint (DemoteCodes) but never ejects it. CANCELLED
// counts for nothing.
//
// DEADLINE_EXCEEDED follows Config.DeadlineExceeded. Under the default,
// when_silent, it is a failure only when the endpoint gave no answer
// between the pick of the timed-out call and its end. So a black hole is
// ejected on the ConsecutiveFailures-th timeout of a call picked after its
// last answer, whether it answered before or not, while a busy endpoint,
// whose calls queue into their deadlines while it answers others, is
// demoted (load shifts away) and never ejected for it, however many of its
// timeouts come between two answers: such a timeout neither adds to the
// run of failures nor ends it. To tell, each call picked under when_silent
// carries the count of answers its endpoint had given at the pick, in a
// record that Done puts back in a pool, and each answer adds one to the
// count: Pick and Done stay lock-free and allocation-free. The judgement is exact but for two approximations: an answer that
// comes at the moment of a pick may count on either side of it, and around
// a live change to when_silent, the calls picked before it count their
// timeouts as failures and their answers not at all.
//
// Among the usable endpoints, picks prefer the one with less work per unit
// of weight (Config.LoadAware, on by default): each pick weighs the endpoint
// the weighted schedule names against a second one drawn from the schedule,
// the cost of each being its latency estimate times one plus its calls in
// flight scaled by its weight, and takes the second only when it costs less
// than half as much (Config.LoadMargin). The estimate is a moving average
// whose weight follows the time between samples (Config.LatencyDecay),
// taken on one call in 16 and on probes: an endpoint with no sample for
// Config.ProbeInterval (times one plus its calls in flight) keeps its next
// turn whatever its cost, so an endpoint that became fast again wins its share back within
// seconds. A call that failed, was refused or was cancelled never lowers an
// estimate. With equal latencies and no calls in flight the shares are
// exactly the weights; a slow endpoint gets little more than its probes.
//
// The policy depends on no registry: any resolver feeds it, e.g. the
// consul:/// resolver of package kit/resolver or grpc-go's manual resolver
// in tests. Nothing is process-wide: what differs per ClientConn comes with
// its resolver state, a [Monitor] that collects the balancer's statistics
// ([SetMonitor]) and a logger for its events ([SetLogger]); kit clients
// pass theirs this way. A resolver with datacenter failover says which
// datacenter the endpoints are in and the failover order
// ([SetDatacenters]); the balancer shows both in its stats
// ([TargetStats].Datacenters) and counts the switches, on state updates
// only, never on the pick path.
package balancer
