// Package middleware will hold grpckit's interceptors: timeout, retry, circuit
// breaker, rate limit, tracing, metrics, recovery, logging, auth and dedupe.
// It is empty until that work lands; see DESIGN.md.
package middleware
