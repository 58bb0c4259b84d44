package config

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/consul/api"
)

// Option configures [Load].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	file      string
	envPrefix string
	lookupEnv func(string) (string, bool)
	fs        *flag.FlagSet
	args      []string
	print     bool // -print-config was given
	stdout    io.Writer
	consul    *api.Client
	consulOff bool
	kvKey     string
	logger    *slog.Logger

	// KV watch timing (see internal/consulq).
	waitTime      time.Duration
	answerTimeout time.Duration
	minInterval   time.Duration
	backoffBase   time.Duration
	backoffMax    time.Duration
	debounce      time.Duration // file events closer than this make one reload
}

func defaultOptions(service string) options {
	return options{
		envPrefix:     "GRPCKIT_",
		lookupEnv:     os.LookupEnv,
		stdout:        os.Stdout,
		kvKey:         "grpckit/" + service,
		logger:        slog.New(slog.DiscardHandler),
		waitTime:      5 * time.Minute,
		answerTimeout: 10 * time.Second,
		minInterval:   50 * time.Millisecond,
		backoffBase:   100 * time.Millisecond,
		backoffMax:    5 * time.Second,
		debounce:      50 * time.Millisecond,
	}
}

// WithFile reads the YAML file path (same schema as the Consul document)
// and reloads it when it changes. The -config flag, when given, names
// another file. A missing file is an error at start; a file that goes
// missing later (mid-rename) keeps the configuration as it was.
func WithFile(path string) Option { return optionFunc(func(o *options) { o.file = path }) }

// WithFlags defines the configuration's flags on fs and parses args with
// it: -config FILE, -print-config, and one flag per setting, named by its
// YAML path (-ratelimit.rps 10, -server.listen :9000). Define the
// program's other flags on fs before calling Load; read them after.
func WithFlags(fs *flag.FlagSet, args []string) Option {
	return optionFunc(func(o *options) {
		o.fs = fs
		o.args = args
		if o.args == nil {
			o.args = []string{}
		}
	})
}

// WithEnvPrefix sets the prefix of the environment variables. Default
// "GRPCKIT_": GRPCKIT_RATELIMIT_RPS sets ratelimit.rps.
func WithEnvPrefix(prefix string) Option {
	return optionFunc(func(o *options) { o.envPrefix = prefix })
}

// WithEnv reads the environment through lookup instead of [os.LookupEnv].
func WithEnv(lookup func(key string) (string, bool)) Option {
	return optionFunc(func(o *options) {
		if lookup != nil {
			o.lookupEnv = lookup
		}
	})
}

// WithConsul uses c for the KV source instead of a client made from the
// registry section.
func WithConsul(c *api.Client) Option {
	return optionFunc(func(o *options) { o.consul, o.consulOff = c, false })
}

// WithoutConsul turns the KV source off.
func WithoutConsul() Option {
	return optionFunc(func(o *options) { o.consul, o.consulOff = nil, true })
}

// WithKVKey sets the Consul key of the KV source. Default
// "grpckit/<service>".
func WithKVKey(key string) Option { return optionFunc(func(o *options) { o.kvKey = key }) }

// WithLogger logs accepted and refused changes and source failures to l.
// Default: discard.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithOutput sets where -print-config writes. Default os.Stdout.
func WithOutput(w io.Writer) Option {
	return optionFunc(func(o *options) {
		if w != nil {
			o.stdout = w
		}
	})
}
