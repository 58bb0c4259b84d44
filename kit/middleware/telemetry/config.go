package telemetry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config is the telemetry section of a service's configuration. It is plain
// data; the zero value is not useful, start from [DefaultConfig].
type Config struct {
	// ServiceName is the service.name resource attribute of every span and
	// the target_info of /metrics. Required.
	ServiceName string `yaml:"service_name" json:"service_name"`

	// TracesSampler chooses which new traces are recorded when a span
	// exporter runs (without one nothing is recorded whatever the sampler).
	// Values follow OTEL_TRACES_SAMPLER, with the ratio after a colon:
	// "always_on", "always_off", "traceidratio:<f>", "parentbased_always_on",
	// "parentbased_always_off", "parentbased_traceidratio:<f>", where <f> is
	// in [0, 1] (1 when omitted). The parentbased_ samplers follow the
	// caller's decision when the call carries a trace context.
	// The empty string means OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
	// from the environment, else "parentbased_always_on".
	// Default "parentbased_always_on".
	TracesSampler string `yaml:"traces_sampler" json:"traces_sampler"`

	// Metrics turns on RPC metrics and the Prometheus registry served by
	// [Telemetry.MetricsHandler]. When off, [Telemetry.MeterProvider] is a
	// no-op provider and /metrics is empty. Default true.
	Metrics bool `yaml:"metrics" json:"metrics"`
}

// DefaultConfig returns the default configuration. ServiceName is empty and
// must be set.
func DefaultConfig() Config {
	return Config{
		TracesSampler: "parentbased_always_on",
		Metrics:       true,
	}
}

// Validate reports every invalid field of c, each error prefixed with
// "telemetry:" and naming the field.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("telemetry: service_name is required"))
	}
	if c.TracesSampler != "" {
		if _, err := parseSampler(c.TracesSampler, ""); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: traces_sampler: %w", err))
		}
	}
	return errors.Join(errs...)
}

// parseSampler returns the sampler named by name, in the OTEL_TRACES_SAMPLER
// vocabulary; the ratio of the traceidratio samplers comes after a colon in
// name, else from arg, else 1.
func parseSampler(name, arg string) (sdktrace.Sampler, error) {
	name = strings.TrimSpace(name)
	if n, a, ok := strings.Cut(name, ":"); ok {
		name, arg = n, a
	}
	ratio := func() (float64, error) {
		arg = strings.TrimSpace(arg)
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("ratio %q is not a number in [0, 1]", arg)
		}
		return f, nil
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		f, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.TraceIDRatioBased(f), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		f, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f)), nil
	}
	return nil, fmt.Errorf("unknown sampler %q (want always_on, always_off, traceidratio:<f>, "+
		"parentbased_always_on, parentbased_always_off or parentbased_traceidratio:<f>)", name)
}
