// Package svcmain holds what the example services' main functions share:
// flags with environment fallbacks (GRPCKIT_<SECTION>_<FIELD>, CONSUL_HTTP_ADDR),
// the logger, and a kit server registered in Consul.
package svcmain
