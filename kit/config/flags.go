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
		usage := fmt.Sprintf("sets %s (env %s)", name, f.envName(s.o.envPrefix))
		if f.secret {
			usage = fmt.Sprintf("a secret, never a flag: set %s in the file or the environment (env %s)", name, f.envName(s.o.envPrefix))
		}
		fs.Var(&settingFlag{f: f, env: f.envName(s.o.envPrefix), set: func(v any) { setPath(set, f.path, v) }}, name, usage)
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
	env  string // the setting's environment variable
	set  func(any)
	text string // the value given last
}

func (v *settingFlag) String() string { return v.text }

// Set parses s. A secret is refused: the command line of a process is
// public on its host (ps, /proc/PID/cmdline, pprof's cmdline page).
func (v *settingFlag) Set(s string) error {
	if v.f.secret {
		return fmt.Errorf("%s is a secret and cannot be a flag (ps and /proc show a command line): set %s or the file instead", v.f.key(), v.env)
	}
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
