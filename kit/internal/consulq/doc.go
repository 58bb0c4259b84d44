// Package consulq holds the rules every Consul blocking-query loop in kit
// follows: the registry's watcher and keeper, and kit/config's KV source.
//
//   - An index that goes backwards restarts the loop from 0; an answer
//     carrying index 0 is treated as 1 (see [NextIndex]).
//   - A query is bounded by [QueryTimeout], so an agent that accepts
//     connections but never answers cannot hang a loop.
//   - Failed queries are retried after capped exponential delays with
//     jitter ([Backoff]); successful ones are paced by a minimum interval.
package consulq
