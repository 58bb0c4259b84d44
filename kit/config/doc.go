// Package config will hold grpckit's typed configuration: defaults, file,
// environment, flags and Consul KV with validated hot reload. It is empty until
// that work lands; see DESIGN.md.
package config
