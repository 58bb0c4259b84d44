package dedupe

import (
	"fmt"
	"slices"
	"time"

	"github.com/grpckit/grpckit/kit/duration"

	"github.com/grpckit/grpckit/kit/middleware"
)

// Config is the dedupe section of a service's configuration (server side).
// Start from [DefaultConfig] for the defaults.
type Config struct {
	// TTL is how long the result of a completed call is remembered. Must be
	// positive. Default: 10m.
	TTL duration.Duration `yaml:"ttl" json:"ttl"`
	// MaxEntries bounds the number of remembered results; the least recently
	// used is evicted first. Must be positive. Default: 10000.
	MaxEntries int `yaml:"max_entries" json:"max_entries"`
	// MaxEntriesPerCaller bounds the remembered results of one caller
	// identity, so that one caller cannot evict everyone else's: past it,
	// the caller's own least recently used result is evicted first. 0 means
	// a tenth of MaxEntries (at least 1); a value above MaxEntries acts as
	// MaxEntries. Must not be negative. Default: 0.
	MaxEntriesPerCaller int `yaml:"max_entries_per_caller" json:"max_entries_per_caller"`
	// Methods lists the deduplicated methods: full method names
	// ("/user.v1.UserService/CreateUser") or whole services
	// ("/user.v1.UserService/*"). Default: none.
	Methods []string `yaml:"methods" json:"methods"`
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{TTL: duration.Duration(10 * time.Minute), MaxEntries: 10000}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// compiled is a validated Config; it is never modified after compile.
type compiled struct {
	cfg       Config
	perCaller int // MaxEntriesPerCaller in force
	methods   middleware.MethodTable[struct{}]
}

func compile(c Config) (*compiled, error) {
	if c.TTL <= 0 {
		return nil, fmt.Errorf("dedupe: ttl: must be positive, got %v", c.TTL)
	}
	if c.MaxEntries <= 0 {
		return nil, fmt.Errorf("dedupe: max_entries: must be positive, got %d", c.MaxEntries)
	}
	if c.MaxEntriesPerCaller < 0 {
		return nil, fmt.Errorf("dedupe: max_entries_per_caller: must not be negative, got %d", c.MaxEntriesPerCaller)
	}
	t, err := methodTable(c.Methods)
	if err != nil {
		return nil, err
	}
	perCaller := c.MaxEntriesPerCaller
	if perCaller == 0 {
		perCaller = max(1, c.MaxEntries/10)
	}
	c.Methods = slices.Clone(c.Methods)
	return &compiled{cfg: c, perCaller: min(perCaller, c.MaxEntries), methods: t}, nil
}

// methodTable reads the method patterns of either side's Methods.
func methodTable(methods []string) (middleware.MethodTable[struct{}], error) {
	set := make(map[string]struct{}, len(methods))
	for _, m := range methods {
		set[m] = struct{}{}
	}
	t, err := middleware.NewMethodTable(set)
	if err != nil {
		return t, fmt.Errorf("dedupe: methods: %w", err)
	}
	return t, nil
}
