// Package duration holds the one duration type of kit's configuration
// structs: a [time.Duration] written as text such as "5s" in YAML, JSON
// (service configs, /debug/kit) and environment values. Every duration of
// every configuration section has this type, so every surface reads and
// writes durations the same way.
package duration

import "time"

// Duration is a [time.Duration] that reads and writes as text such as "5s".
// In JSON it is a string; a number is an error.
type Duration time.Duration

// String formats d like [time.Duration.String].
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d like [time.Duration.String].
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads d with [time.ParseDuration].
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
