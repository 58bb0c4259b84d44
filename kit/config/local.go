package config

import (
	"fmt"
	"strings"
)

// LocalError is the error of a Consul KV document that sets settings
// tagged `kit:"local"` (see [Standard]: server.admin, server.pprof, the
// registry section, ...): they change the security boundary, so they come
// from the defaults, the file, the environment or the flags only. The
// document is refused as a whole, like any invalid change: the previous
// configuration stays, the refusal is logged and shown in [Info] (and on
// /debug/kit), and at start the service starts without the document.
type LocalError struct {
	// Key is the Consul key of the document.
	Key string
	// Fields are the dotted paths of the local settings the document sets.
	Fields []string
}

func (e *LocalError) Error() string {
	it := "it"
	if len(e.Fields) > 1 {
		it = "them"
	}
	return fmt.Sprintf("consul kv %s: %s cannot be set from Consul KV (it changes the security boundary); set %s in the file, environment or flags",
		e.Key, strings.Join(e.Fields, ", "), it)
}

// checkLocal returns a [*LocalError] when the KV document doc sets a local
// field. A document that does not parse is left to the build, which
// reports why.
func (s *Store[T]) checkLocal(doc []byte) error {
	m, err := nodeParser{}.Unmarshal(doc)
	if err != nil {
		return nil
	}
	var set []string
	for _, f := range s.fields {
		if f.local && setsPath(m, f.path) {
			set = append(set, f.key())
		}
	}
	if len(set) == 0 {
		return nil
	}
	return &LocalError{Key: s.o.kvKey, Fields: set}
}

// setsPath reports whether the parsed document m sets the value at path:
// it names the path's last key, or gives one of the sections on the way a
// value that is not a mapping (which would replace the section's fields).
// An empty mapping of a section sets nothing.
func setsPath(m map[string]any, path []string) bool {
	for i, k := range path {
		v, ok := m[k]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		sub, ok := v.(map[string]any)
		if !ok {
			return true
		}
		m = sub
	}
	return false
}
