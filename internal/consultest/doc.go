// Package consultest starts real Consul dev agents for tests.
package consultest
