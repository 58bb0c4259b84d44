package config

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// tree returns the YAML tree of v.
func tree(t *testing.T, v fuzzConfig) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// deletePath removes the setting at path from the tree m.
func deletePath(m map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, path[len(path)-1])
}

// FuzzEnvAndFlags gives an arbitrary value to one setting of every kind
// (strings, ints, floats, bools, durations, lists, maps, sections' leaves)
// through its GRPCKIT_* environment variable and, separately, its -flag,
// along with a valid variable for another setting: Load never panics; it
// fails with an error and no store (nothing applied), or returns a valid
// configuration that differs from the defaults only in the two settings
// given; the environment and the flag accept and refuse the same values
// and make the same configuration.
func FuzzEnvAndFlags(f *testing.F) {
	fields, err := fieldsOf(reflect.TypeFor[fuzzConfig]())
	if err != nil {
		f.Fatal(err)
	}
	index := map[string]int{}
	for i, fd := range fields {
		index[fd.key()] = i
	}
	for _, seed := range []struct{ key, value string }{
		{"ratelimit.rps", "5"}, {"ratelimit.rps", "-1"}, {"ratelimit.rps", "1e400"}, {"ratelimit.rps", ".nan"},
		{"ratelimit.burst", "99999999999999999999"}, {"ratelimit.burst", "0x10"}, {"ratelimit.burst", "[1]"},
		{"timeout.default", "1s"}, {"timeout.default", "-1s"}, {"timeout.default", "9999999h"}, {"timeout.default", "1"},
		{"telemetry.metrics", "true"}, {"telemetry.metrics", "yes"}, {"telemetry.metrics", ""},
		{"registry.tags", "a, b,,c"}, {"registry.tags", "[a, {b: c}]"}, {"registry.tags", ""},
		{"registry.meta", "{k: v}"}, {"registry.meta", "{k: [1]}"}, {"registry.meta", "k=v"},
		{"extra.table", "{a: 1, b: x}"}, {"extra.table", "&a {x: *a}"}, {"extra.name", "{not: yaml}"},
		{"balancer.failure_codes", "UNAVAILABLE,NOPE"}, {"log.level", "loud"}, {"server.listen", ":-1"},
	} {
		i, ok := index[seed.key]
		if !ok {
			continue // a setting this version of Standard lacks
		}
		f.Add(uint16(i), seed.value)
	}
	defaults := fuzzConfig{Standard: DefaultStandard()}
	other := "ratelimit.max_callers"
	if _, ok := index[other]; !ok {
		f.Fatalf("no setting %s", other)
	}
	otherField := fields[index[other]]

	f.Fuzz(func(t *testing.T, i uint16, value string) {
		fd := fields[int(i)%len(fields)]
		env := map[string]string{fd.envName("GRPCKIT_"): value}
		if fd.key() != other {
			env[otherField.envName("GRPCKIT_")] = "7"
		}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		fromEnv, envErr := Load("fuzz", defaults, WithoutConsul(), WithEnv(lookup))

		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		args := []string{"-" + fd.key() + "=" + value}
		if fd.key() != other {
			args = append(args, "-"+other+"=7")
		}
		fromFlags, flagErr := Load("fuzz", defaults, WithoutConsul(), WithEnv(func(string) (string, bool) { return "", false }), WithFlags(fs, args))

		for _, r := range []struct {
			name string
			s    *Store[fuzzConfig]
			err  error
		}{{"environment", fromEnv, envErr}, {"flags", fromFlags, flagErr}} {
			if r.err != nil {
				if r.s != nil {
					t.Fatalf("%s %s=%q: Load returned a store and the error %v", r.name, fd.key(), value, r.err)
				}
				if msg := r.err.Error(); !strings.HasPrefix(msg, "config: ") && !strings.Contains(msg, fd.key()) {
					t.Fatalf("%s %s=%q: error %q names neither the package nor the setting", r.name, fd.key(), value, msg)
				}
				continue
			}
			t.Cleanup(r.s.Close)
			v := r.s.Current().Value
			if err := validate(&v); err != nil {
				t.Fatalf("%s %s=%q: accepted an invalid config: %v", r.name, fd.key(), value, err)
			}
			want := defaults
			want.Telemetry.ServiceName = "fuzz"
			got, base := tree(t, v), tree(t, want)
			for _, m := range []map[string]any{got, base} {
				deletePath(m, fd.path)
				deletePath(m, otherField.path)
			}
			if !reflect.DeepEqual(got, base) {
				t.Fatalf("%s %s=%q changed other settings:\n%v\nwant\n%v", r.name, fd.key(), value, got, base)
			}
			if fd.key() != other && v.RateLimit.MaxCallers != 7 {
				t.Fatalf("%s: %s=7 was not applied along with %s=%q", r.name, other, fd.key(), value)
			}
		}
		if (envErr == nil) != (flagErr == nil) {
			t.Fatalf("%s=%q: environment error %v, flag error %v", fd.key(), value, envErr, flagErr)
		}
		if envErr == nil && !reflect.DeepEqual(fromEnv.Current().Value, fromFlags.Current().Value) {
			t.Fatalf("%s=%q: the environment and the flag make different configs:\n%+v\n%+v", fd.key(), value,
				fromEnv.Current().Value, fromFlags.Current().Value)
		}
	})
}
