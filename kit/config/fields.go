package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// field is one setting of a config struct that the environment and flags
// can name: a leaf of the YAML tree (a scalar, list or map), not a section.
type field struct {
	path   []string     // YAML keys from the root
	typ    reflect.Type // Go type of the value
	secret bool         // masked by Print (tag `kit:"secret"`)
	local  bool         // refused from Consul KV (tag `kit:"local"`)
}

// kitTag is what a field's `kit` struct tag says: a comma-separated list
// of options.
//
//   - secret: Print masks the value (-print-config, /debug/kit never shows
//     it either: such fields carry `json:"-"`), it cannot be a flag, and it
//     is local too.
//   - local: the value comes from the defaults, the file, the environment
//     or the flags only: a Consul KV document that sets it is refused as a
//     whole. For settings that change the security boundary (listen
//     addresses of the admin endpoint, tokens, keys, who is trusted), which
//     whoever may write the service's Consul key must not be able to change;
//     and the targets a service's clients call, since they carry the
//     callers' tokens.
//
// A tag on a section (a struct-typed field) applies to every field under
// it; `kit:"secret,local"` combines both.
type kitTag struct{ secret, local bool }

// parseKitTag reads the `kit` tag of sf over the options inherited from
// the sections above it.
func parseKitTag(sf reflect.StructField, inherited kitTag) kitTag {
	t := inherited
	for opt := range strings.SplitSeq(sf.Tag.Get("kit"), ",") {
		switch strings.TrimSpace(opt) {
		case "secret":
			// A secret is local too: a KV key is readable by every token
			// with key:read on it, and whoever sets a secret (a DSN, a
			// token) chooses where the service connects.
			t.secret, t.local = true, true
		case "local":
			t.local = true
		}
	}
	return t
}

// key is the dotted path, which is also the flag name: "ratelimit.rps".
func (f field) key() string { return strings.Join(f.path, ".") }

// envName is the environment variable of f: prefix + "RATELIMIT_RPS".
func (f field) envName(prefix string) string {
	name := strings.ToUpper(strings.Join(f.path, "_"))
	return prefix + strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
)

// fieldsOf lists the settings of struct type t through its yaml tags, as
// yaml.v3 names them: the tag's name, else the lower-cased field name;
// `yaml:",inline"` structs are flattened and `yaml:"-"` fields skipped.
func fieldsOf(t reflect.Type) ([]field, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: %v is not a struct", t)
	}
	var out []field
	var walk func(t reflect.Type, prefix []string, tags kitTag)
	walk = func(t reflect.Type, prefix []string, inherited kitTag) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			tag := sf.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			tags := parseKitTag(sf, inherited)
			if name == "-" {
				continue
			}
			if strings.Contains(","+opts+",", ",inline,") {
				if sf.Type.Kind() == reflect.Struct {
					walk(sf.Type, prefix, tags)
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			path := append(append([]string(nil), prefix...), name)
			if isSection(sf.Type) {
				walk(sf.Type, path, tags)
				continue
			}
			out = append(out, field{path: path, typ: sf.Type, secret: tags.secret, local: tags.local})
		}
	}
	walk(t, nil, kitTag{})
	return out, nil
}

// isSection reports whether values of t are YAML mappings of named fields
// that fieldsOf descends into.
func isSection(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || t == timeType {
		return false
	}
	p := reflect.PointerTo(t)
	return !p.Implements(textUnmarshaler) && !p.Implements(yamlUnmarshaler)
}

// checkEnvNames fails when two fields map to one environment variable
// ("a_b.c" and "a.b_c"), which would make the environment ambiguous.
func checkEnvNames(fields []field, prefix string) error {
	seen := map[string]string{}
	for _, f := range fields {
		n := f.envName(prefix)
		if prev, ok := seen[n]; ok {
			return fmt.Errorf("config: %s and %s both map to the environment variable %s", prev, f.key(), n)
		}
		seen[n] = f.key()
	}
	return nil
}

// parseValue turns an environment or flag value into a layer value for f,
// checked against f's type: a string field takes the text as it is; a bool
// takes what strconv.ParseBool accepts; a list of strings also takes
// comma-separated items; anything else is read as YAML ("10", "1.5s",
// "[a, b]", "{x: 1}"). Mappings become maps (merged with the lower layers
// key by key), everything else a *yaml.Node leaf.
func parseValue(f field, s string) (any, error) {
	var n *yaml.Node
	kind := f.typ.Kind()
	switch {
	case kind == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean (true, false, 1, 0)", s)
		}
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
	case kind == reflect.String && !reflect.PointerTo(f.typ).Implements(textUnmarshaler):
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	case kind == reflect.Slice && f.typ.Elem().Kind() == reflect.String && !strings.HasPrefix(strings.TrimSpace(s), "["):
		n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if strings.TrimSpace(s) != "" {
			for item := range strings.SplitSeq(s, ",") {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(item)})
			}
		}
	default:
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
			return nil, fmt.Errorf("%q is not valid YAML: %w", s, err)
		}
		if len(doc.Content) == 0 {
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
		} else {
			budget := maxNodes
			var err error
			if n, err = expand(doc.Content[0], &budget); err != nil {
				return nil, err
			}
		}
	}
	if err := n.Decode(reflect.New(f.typ).Interface()); err != nil {
		return nil, fmt.Errorf("%q is not a valid value: %w", s, err)
	}
	if n.Kind == yaml.MappingNode {
		return toMap(n)
	}
	return n, nil
}

// setPath sets m[path[0]][path[1]]... = v, creating maps on the way.
func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}
