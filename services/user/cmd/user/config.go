package main

import (
	"errors"

	"github.com/grpckit/grpckit/kit/config"
)

// Config is the user service's configuration: kit's standard sections and
// the user section.
type Config struct {
	config.Standard `yaml:",inline"`
	User            Section `yaml:"user"`
}

// Section is the user section of [Config].
type Section struct {
	// DB is the SQLite database file; several instances on one host may
	// share it. Default "users.db". Read at start.
	DB string `yaml:"db"`
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{Standard: config.DefaultStandard(), User: Section{DB: "users.db"}}
}

// Validate checks the user section (kit/config checks the standard ones).
func (c *Config) Validate() error {
	if c.User.DB == "" {
		return errors.New("user.db must not be empty")
	}
	return nil
}
