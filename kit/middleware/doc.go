// Package middleware holds what grpckit's interceptors share; the
// interceptors themselves live in sub-packages, each usable alone:
//
//	timeout    client default deadline and per-method overrides; server deadline cap
//	retry      retries of idempotent (or deduplicated) calls, with a budget per target
//	breaker    a circuit breaker per (target, method), on sony/gobreaker
//	ratelimit  server limits (global, per method, per caller) and client limits
//	telemetry  OpenTelemetry metrics and spans in the chain, Prometheus /metrics, OTLP from OTEL_*
//	recovery   panics become codes.Internal
//	logging    slog access log
//	auth       bearer JWT, per-method public allow-list, TLS and mTLS
//	dedupe     request ids, replay of completed calls, duplicates wait for the first
//
// # The shape of a layer
//
// Every sub-package has the same shape:
//
//   - a Config of plain data with yaml and json tags in snake_case (the YAML
//     schema of its kit/config section; durations are [github.com/grpckit/grpckit/kit/duration.Duration],
//     status codes are names read with [github.com/grpckit/grpckit/kit/statuscode.Parse]), a DefaultConfig
//     function documenting every default, and Validate;
//   - a constructor New(Config, ...Option) (*T, error) that validates the
//     Config (options: WithLogger, WithMeterProvider; both default to
//     discarding, never to globals) — a layer with a client side as well
//     has NewClient(ClientConfig, ...Option) when the two sides need
//     different settings;
//   - Config and SetConfig on *T for run-time changes ([Configurable]):
//     validated as a whole, swapped atomically, the old one kept on error;
//   - the interceptors of the sides it serves ([ServerLayer], [ClientLayer]),
//     nil for a kind of call it leaves alone.
//
// telemetry is the one exception: it is the meter provider the other layers
// record to and may be shared by a server and its clients, so kit builds it
// apart from the table (New takes a context for its exporters) and puts its
// interceptors around the table's: first on the server; on the client its
// metrics first and its spans last, one per attempt.
//
// # How to add a layer
//
//  1. Write its package under kit/middleware/ in the shape above, with its
//     tests (kit/internal/kittest has a bufconn server, a test service and
//     metric helpers).
//  2. Add one entry per side to the layer table in kit/layers.go, at the
//     position the layer takes in the chain: its name (a new Layer
//     constant, which WithoutLayers and WithLayer accept), its constructor
//     and its configuration section.
//  3. If its settings are live, add its section to config.Standard
//     (kit/config/standard.go: the field and its default; Validate finds it).
//
// kit then builds it for every server or client, turns it off with
// WithoutLayers, takes a caller's object with WithLayer, and applies every
// change of its section while the server or client lives.
package middleware
