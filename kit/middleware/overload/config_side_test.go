package overload

import (
	"strings"
	"testing"
)

func TestConfigValidateNamesSide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string // each in the error; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"server min_limit", func(c *Config) { c.Server.MinLimit = -1 }, []string{"overload: server.min_limit"}},
		{"server retry_after", func(c *Config) { c.Server.RetryAfter = 0 }, []string{"overload: server.retry_after"}},
		{"client k", func(c *Config) { c.Client.K = 0 }, []string{"overload: client.k"}},
		{"client k while turned off", func(c *Config) { c.Client.Enabled, c.Client.K = false, nan() }, []string{"overload: client.k"}},
		{"both sides", func(c *Config) { c.Server.MinLimit, c.Client.K = -1, 0 },
			[]string{"overload: server.min_limit", "overload: client.k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to name %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "overload: "); got != len(tc.want) {
				t.Errorf("Validate() = %q, %d errors, want %d", err, got, len(tc.want))
			}
		})
	}
}
