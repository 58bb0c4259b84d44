package main

import (
	"fmt"
	"go/token"
	"regexp"
)

// nameRe is the shape of a service name: it is used as a Go package name,
// a proto package, a directory, a Consul service, a compose service and a
// configuration section, and this is what all of them accept.
var nameRe = regexp.MustCompile(`^[a-z][a-z0-9]{1,29}$`)

// versionRe matches names that read as an API version (v1, v12).
var versionRe = regexp.MustCompile(`^v[0-9]+$`)

// reserved maps the names a service may not take to the reason. It is never
// modified.
var reserved = reservedNames()

func reservedNames() map[string]string {
	reserved := map[string]string{}
	add := func(reason string, names ...string) {
		for _, n := range names {
			reserved[n] = reason
		}
	}
	add("the Consul service of docker-compose.yml", "consul")
	add("a top-level name of a grpckit project or of this repository", "grpckit", "kit", "internal", "proto", "services", "cmd", "scripts")
	add("a directory name the go tool treats specially", "vendor", "testdata")
	add("a standard configuration section every kit service has",
		"server", "registry", "ratelimit", "timeout", "retry", "breaker", "balancer", "log", "telemetry")
	add("a name kit/config's Standard section or the service flags already use",
		"standard", "sections", "validate", "config", "probe")
	// Names the generated main.go and config.go declare or import: the
	// service package, imported under its name, would collide with them.
	add("a name the generated command already uses", "main", "s", "err", "service", "maxMessageBytes")
	// Every package the templates import, and init, which no import may be named.
	add("a package the generated code imports", "context", "errors", "fmt", "io", "slog", "net", "os", "strings", "atomic", "testing",
		"grpc", "codes", "insecure", "peer", "status", "bufconn", "errdetails", "cmp", "goleak", "kit", "config")
	add("a function name Go reserves", "init")
	add("a predeclared Go identifier",
		"any", "bool", "byte", "comparable", "complex64", "complex128", "error", "float32", "float64",
		"int", "int8", "int16", "int32", "int64", "rune", "string",
		"uint", "uint8", "uint16", "uint32", "uint64", "uintptr",
		"true", "false", "iota", "nil",
		"append", "cap", "clear", "close", "complex", "copy", "delete", "imag", "len", "make",
		"max", "min", "new", "panic", "print", "println", "real", "recover")
	return reserved
}

// repoReserved maps the names a service of this repository may not take,
// beyond [reserved], to the reason. It is never modified.
var repoReserved = map[string]string{
	"greeter": "an example service of this repository",
	"user":    "an example service of this repository",
	"gateway": "an example service of this repository",
}

// validateName checks that name can be a new service's name. It does not
// look at the file system; [servicePlan.checkTargets] does.
func validateName(name string) error {
	switch {
	case !nameRe.MatchString(name):
		return fmt.Errorf("invalid service name %q: use 2 to 30 lowercase letters and digits, starting with a letter", name)
	case token.IsKeyword(name):
		return fmt.Errorf("invalid service name %q: it is a Go keyword", name)
	case versionRe.MatchString(name):
		return fmt.Errorf("invalid service name %q: it reads as an API version (the proto package would be %s.v1)", name, name)
	}
	if reason, ok := reserved[name]; ok {
		return fmt.Errorf("invalid service name %q: it is reserved (%s)", name, reason)
	}
	return nil
}
