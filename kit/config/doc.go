// Package config gives a kit service its typed configuration, from
// defaults, a YAML file, the environment, flags and a Consul KV document,
// later wins, and keeps it up to date while the service runs.
//
// A service declares a struct that embeds [Standard] inline (the sections
// every kit service has: server, registry, ratelimit, timeout, retry,
// breaker, balancer, log, telemetry) and adds its own, with defaults:
//
//	type Config struct {
//		config.Standard `yaml:",inline"`
//		Store Store `yaml:"store"`
//	}
//
//	store, err := config.Load("user", Config{Standard: config.DefaultStandard(), ...},
//		config.WithFlags(flag.CommandLine, os.Args[1:]))
//
// Every setting has a YAML path, an environment variable and a flag:
// ratelimit.rps is GRPCKIT_RATELIMIT_RPS and -ratelimit.rps. Environment
// and flag values are YAML ("10", "true", "[a, b]"; strings as they are;
// lists of strings also "a,b"). The Consul key grpckit/<service> holds a
// YAML document with the file's schema; a partial document overrides only
// what it names (maps merge key by key, lists are replaced).
//
// Every candidate configuration is decoded strictly (unknown keys and
// wrongly typed values are errors) and validated as a whole. A valid change
// swaps an immutable [Snapshot] atomically and calls the subscribers; an
// invalid one is refused with a logged reason, counted in [Info], and the
// previous snapshot keeps serving. The file is watched through its
// directory, so atomic saves (rename over) reload and editors' temporary
// files do not; the Consul key is followed with blocking queries under the
// same index rules as the registry.
//
// Settings that change the security boundary carry the struct tag
// `kit:"local"` (server.admin, server.pprof, the registry section, the auth
// settings): they come from the defaults, the file, the environment or the
// flags only. A Consul KV document that sets one is refused as a whole
// with a [LocalError] naming them, at start as later: whoever may write a
// service's key may tune it, not open its admin endpoint or swap its keys.
// A tag on a section applies to every field under it; `kit:"secret"` masks
// a value in -print-config, and the two combine (`kit:"secret,local"`).
//
// With Consul's ACLs on, the KV source reads the key with registry.token
// (else CONSUL_HTTP_TOKEN), which needs key:read on it; a first read that
// Consul refuses (403) fails [Load] with an error wrapping
// consul.ErrACLRefused, never an empty document.
//
// The merging of the layers is done by koanf (github.com/knadh/koanf/v2),
// a maintained library with no global state whose providers and parsers
// come as separate small modules; kit decodes the merged tree with
// yaml.v3 so that the sections keep their YAML types and custom decoders.
//
// kit.WithConfig makes the live sections of a [Store] drive a server's and
// a client's layers and the kit_weighted balancer.
package config
