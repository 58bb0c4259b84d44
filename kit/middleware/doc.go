// Package middleware holds what grpckit's interceptors share; the
// interceptors themselves live in sub-packages, each usable alone:
//
//	timeout    client default deadline and per-method overrides; server deadline cap
//	retry      retries of idempotent (or deduplicated) calls, with a budget per target
//	breaker    a circuit breaker per (target, method), on sony/gobreaker
//	ratelimit  server limits (global, per method, per caller) and client limits
//	telemetry  OpenTelemetry stats handlers, Prometheus /metrics, OTLP from OTEL_*
//	recovery   panics become codes.Internal
//	logging    slog access log
//	auth       bearer JWT, per-method public allow-list, TLS and mTLS
//	dedupe     request ids, replay of completed calls, duplicates wait for the first
//
// Every sub-package follows the same shape: a Config of plain data (the YAML
// schema of kit/config), a constructor New(Config, ...Option) that validates
// it, SetConfig to change it at run time (validated as a whole; an invalid
// config is rejected and the old one stays), and methods returning the
// interceptors.
package middleware
