package main

import (
	"errors"

	"github.com/grpckit/grpckit/kit/config"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

// Config is the greeter service's configuration: kit's standard sections
// and the greeter section.
type Config struct {
	config.Standard `yaml:",inline"`
	Greeter         Section `yaml:"greeter"`
}

// Section is the greeter section of [Config].
type Section struct {
	// UserTarget is the target of the user service. Default
	// "consul:///user". Read at start. Local (never from Consul KV): the
	// calls to it carry the callers' tokens.
	UserTarget string `yaml:"user_target" kit:"local"`
}

// DefaultConfig returns the defaults of every setting. SayHello is public
// (auth.public_methods): callable without a token, here and through the
// gateway, which learns the list from the service's registration. A
// greeting by user_id still needs a token, since user.GetUser does.
func DefaultConfig() Config {
	std := config.DefaultStandard()
	std.Auth.PublicMethods = []string{greeterv1.GreeterService_SayHello_FullMethodName}
	return Config{Standard: std, Greeter: Section{UserTarget: "consul:///user"}}
}

// Validate checks the greeter section (kit/config checks the standard ones).
func (c *Config) Validate() error {
	if c.Greeter.UserTarget == "" {
		return errors.New("greeter.user_target must not be empty")
	}
	return nil
}
