package config

import (
	"fmt"
	"reflect"
)

// parseFlags defines the configuration's flags on the FlagSet of
// WithFlags, parses the arguments, and returns the settings they set. The
// -config and -print-config flags go into s.o.
func (s *Store[T]) parseFlags() (map[string]any, error) {
	fs := s.o.fs
	if fs == nil {
		return nil, nil
	}
	for _, name := range []string{"config", "print-config"} {
		if fs.Lookup(name) != nil {
			return nil, fmt.Errorf("config: flag -%s is already defined", name)
		}
	}
	fs.StringVar(&s.o.file, "config", s.o.file, "YAML configuration file, reloaded when it changes")
	fs.BoolVar(&s.o.print, "print-config", false, "print the effective configuration, secrets masked, and exit")
	set := map[string]any{}
	for _, f := range s.fields {
		name := f.key()
		if fs.Lookup(name) != nil {
			return nil, fmt.Errorf("config: flag -%s is already defined", name)
		}
		fs.Var(&settingFlag{f: f, set: func(v any) { setPath(set, f.path, v) }},
			name, fmt.Sprintf("sets %s (env %s)", name, f.envName(s.o.envPrefix)))
	}
	if err := fs.Parse(s.o.args); err != nil {
		return nil, err
	}
	return set, nil
}

// settingFlag is the flag of one setting. A bool setting is a boolean flag:
// -telemetry.metrics alone means true.
type settingFlag struct {
	f    field
	set  func(any)
	text string // the value given last
}

func (v *settingFlag) String() string { return v.text }

func (v *settingFlag) Set(s string) error {
	val, err := parseValue(v.f, s)
	if err != nil {
		return err
	}
	v.text = s
	v.set(val)
	return nil
}

// IsBoolFlag makes the flag package accept a bool setting without a value.
func (v *settingFlag) IsBoolFlag() bool { return v.f.typ.Kind() == reflect.Bool }
