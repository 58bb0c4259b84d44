package dedupe

import (
	"errors"
	"fmt"
	"strings"
)

// methodTable holds values for full method names ("/pkg.Service/Method")
// and for whole services ("/pkg.Service/*"). Lookups allocate nothing.
type methodTable[V any] struct {
	exact   map[string]V
	service map[string]V // keyed by "/pkg.Service/"
}

// newMethodTable checks every pattern in m and returns the table of m.
func newMethodTable[V any](m map[string]V) (methodTable[V], error) {
	t := methodTable[V]{exact: make(map[string]V), service: make(map[string]V)}
	for p, v := range m {
		if err := checkMethodPattern(p); err != nil {
			return methodTable[V]{}, fmt.Errorf("%q: %w", p, err)
		}
		if svc, ok := strings.CutSuffix(p, "*"); ok {
			t.service[svc] = v
		} else {
			t.exact[p] = v
		}
	}
	return t, nil
}

// lookup returns the value for method: the exact entry, else its service's.
func (t methodTable[V]) lookup(method string) (V, bool) {
	if v, ok := t.exact[method]; ok {
		return v, true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		if v, ok := t.service[method[:i+1]]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// checkMethodPattern accepts "/pkg.Service/Method" and "/pkg.Service/*".
func checkMethodPattern(p string) error {
	svc, name, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	switch {
	case !strings.HasPrefix(p, "/") || !ok || svc == "" || name == "":
		return errors.New(`want "/package.Service/Method" or "/package.Service/*"`)
	case strings.ContainsAny(name, "/") || (name != "*" && strings.Contains(name, "*")) || strings.Contains(svc, "*"):
		return errors.New(`want "/package.Service/Method" or "/package.Service/*"`)
	}
	return nil
}
