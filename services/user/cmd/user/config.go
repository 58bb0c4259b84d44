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
	// DB is the SQLite database file, used unless PostgresDSN is set;
	// several instances on one host may share it. Default "users.db". Read
	// at start.
	DB string `yaml:"db"`
	// PostgresDSN, when set, keeps users in that PostgreSQL database
	// instead (see user.OpenPostgres), e.g.
	// postgres://user:password@db:5432/users?sslmode=disable; any number of
	// instances may share it. Default empty. Read at start; -print-config
	// masks it.
	PostgresDSN string `yaml:"postgres_dsn" kit:"secret"`
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{Standard: config.DefaultStandard(), User: Section{DB: "users.db"}}
}

// Validate checks the user section (kit/config checks the standard ones).
func (c *Config) Validate() error {
	if c.User.DB == "" && c.User.PostgresDSN == "" {
		return errors.New("user.db must not be empty unless user.postgres_dsn is set")
	}
	return nil
}
