package main

// protoTools are the code generation tools, at the versions this
// repository's Makefile and every generated project's Makefile pin (a test
// checks they agree). grpckit new and add do not run them: they generate
// the same code in-process (internal/codegen); make generate runs them.
var protoTools = []struct{ pin, version string }{
	{"BUF_VERSION", "v1.57.0"},
	{"PROTOC_GEN_GO_VERSION", "v1.36.12"},
	{"PROTOC_GEN_GO_GRPC_VERSION", "v1.6.0"},
}

// consulVersion is the Consul release grpckit dev builds when no consul is
// on PATH, as scripts/ensure-consul.sh does here.
const consulVersion = "v1.20.6"
