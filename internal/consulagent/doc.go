// Package consulagent finds a consul binary and runs `consul agent -dev`
// processes on loopback, for the integration tests and the local dev stack.
package consulagent
