// Package e2e holds end-to-end tests: kit servers and clients, the example
// services and a real Consul agent, all in one process on loopback.
package e2e
