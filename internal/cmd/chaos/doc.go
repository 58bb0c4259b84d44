// Command chaos is grpckit's chaos suite (`make chaos`). It builds the user
// and greeter services, starts a real `consul agent -dev` and the services as
// OS processes on free loopback ports (4 user instances sharing one SQLite
// file, 2 greeters), and breaks them under steady load from kit clients in
// this process:
//
//  1. kill-9: SIGKILL one of the 4 user instances;
//  2. rolling-restart: SIGTERM every instance in turn, each restarted and
//     passing in Consul before the next (target: 0 failed calls);
//
// and, in these two, under a write workload (internal/writeload): writers
// create and rename users through consul:///user with request ids
// (kit.WithDedupedMethods) and retries; afterwards the SQLite file must hold
// every accepted write exactly once (figures: writes accepted, failed,
// lost, duplicated; target: none lost or duplicated). Then:
//
//  3. consul-restart: restart the Consul agent, which loses its catalog
//     (target: 0 failed calls; the instances register again by themselves);
//  4. consul-outage: stop the agent for -consul-outage (30s), then start it
//     again (target: 0 failed calls);
//  5. black-hole: SIGSTOP one user instance (short deadlines; kit_weighted
//     must eject it);
//  6. flapping: SIGSTOP/SIGCONT one user instance every 2s (ejection times
//     must grow);
//  7. downstream-outage: every user instance fails while callers go through
//     the greeters; the calls that reach user per call made must stay within
//     the bound the retry budgets allow, far from 3^n.
//
// Then against a real Consul cluster (consultest.StartCluster: 3 servers and
// 2 client agents in dc1, 1 + 1 in dc2 over the WAN, ACLs on), with user
// instances registered with their node's client agent:
//
//  8. consul-leader-loss: dc1's leader server killed under load (target: 0
//     failed calls, the balancer keeps every endpoint, registrations
//     survive);
//  9. agent-loss: a node's client agent and its user instances killed at
//     once (calls move to the other node; failed calls bounded);
//  10. datacenter-failover: every dc1 user instance stopped under load from a
//     consul:///user?failover=dc2 client (calls served from dc2 within 2 s),
//     then started again (calls back in dc1).
//
// Each scenario prints one line on stdout:
//
//	scenario: NAME, calls: N, failed calls: F, key: value, ..., target: ..., verdict: held
//
// With -figures DIR it also writes each scenario's charts as SVG into DIR:
// chaos-NAME.svg, calls and failed calls per 250 ms over the time of its
// load, and, for kill-9, black-hole and flapping, chaos-NAME-shares.svg,
// each user instance's share of the attempts; the faults are marked.
//
// Progress goes to stderr. The exit status is 1 when a target was missed (or
// a scenario could not run), 2 when the suite could not be set up, 130 when
// interrupted. -short shortens the long scenarios, -run picks scenarios, -h
// lists the other flags. The scratch directory (binaries, the SQLite file,
// every process's log, this process's kit log in logs/chaos.log) is removed
// at the end unless a target was missed or -keep is given. Every
// child process runs in its own process group and is killed on the way out,
// including on Ctrl-C; on Linux the children also die with this process.
package main
