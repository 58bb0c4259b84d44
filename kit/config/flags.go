package config

import "fmt"

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
	var errs []error
	for _, f := range s.fields {
		name := f.key()
		if fs.Lookup(name) != nil {
			return nil, fmt.Errorf("config: flag -%s is already defined", name)
		}
		fs.Func(name, fmt.Sprintf("sets %s (env %s)", name, f.envName(s.o.envPrefix)), func(v string) error {
			val, err := parseValue(f, v)
			if err != nil {
				errs = append(errs, err)
				return err
			}
			setPath(set, f.path, val)
			return nil
		})
	}
	if err := fs.Parse(s.o.args); err != nil {
		return nil, err
	}
	return set, nil
}
