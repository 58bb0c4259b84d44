// Package memory is an in-process [registry.Registrar] and [registry.Discovery]
// for tests and single-process programs. Registered instances are healthy
// (passing) until deregistered.
package memory
