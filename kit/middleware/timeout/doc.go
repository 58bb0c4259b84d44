// Package timeout bounds how long gRPC calls may take.
//
// On the client, [Timeouts.UnaryClientInterceptor] gives a call a deadline
// when its context has none: the per-method one from [Config.PerMethod]
// (an exact method or a whole service "/pkg.Service/*"), else
// [Config.Default]. A deadline the caller set is never changed, neither
// extended nor shortened. [Timeouts.StreamClientInterceptor] applies only
// [Config.PerMethod] entries: streams are often long-lived, so the default
// is not imposed on them.
//
// On the server, [Timeouts.UnaryServerInterceptor] and
// [Timeouts.StreamServerInterceptor] cap the deadline of an incoming call at
// [Config.ServerMax] from its arrival, and give a call that arrived without
// a deadline that one.
//
// Durations in [Config] are [time.Duration]. YAML decoders read them from
// strings such as "5s" or "1m30s" (go.yaml.in/yaml/v3 and v4 do so natively
// and write them back the same way; mapstructure does with its
// StringToTimeDurationHookFunc, which koanf and viper install by default).
//
// Kit installs the client interceptors outside the retry layer so that the
// deadline covers all attempts of a call.
package timeout
