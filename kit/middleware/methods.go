package middleware

import (
	"errors"
	"fmt"
	"strings"
)

// MethodTable maps full method names ("/pkg.Service/Method") and whole
// services ("/pkg.Service/*") to values, for the per-method settings of the
// layers. Lookups allocate nothing. It is immutable once built, so safe for
// concurrent use.
type MethodTable[V any] struct {
	exact   map[string]V
	service map[string]V // keyed by "/pkg.Service/"
}

// NewMethodTable checks every pattern of m ([CheckMethodPattern]) and
// returns the table of m.
func NewMethodTable[V any](m map[string]V) (MethodTable[V], error) {
	t := MethodTable[V]{exact: make(map[string]V), service: make(map[string]V)}
	for p, v := range m {
		if err := CheckMethodPattern(p); err != nil {
			return MethodTable[V]{}, fmt.Errorf("%q: %w", p, err)
		}
		if svc, ok := strings.CutSuffix(p, "*"); ok {
			t.service[svc] = v
		} else {
			t.exact[p] = v
		}
	}
	return t, nil
}

// NewMethodSet returns the table of patterns, each mapped to struct{}.
func NewMethodSet(patterns ...string) (MethodTable[struct{}], error) {
	m := make(map[string]struct{}, len(patterns))
	for _, p := range patterns {
		m[p] = struct{}{}
	}
	return NewMethodTable(m)
}

// Lookup returns the value for method: its exact entry, else its service's.
func (t MethodTable[V]) Lookup(method string) (V, bool) {
	if v, ok := t.exact[method]; ok {
		return v, true
	}
	if len(t.service) > 0 {
		if i := strings.LastIndexByte(method, '/'); i > 0 {
			if v, ok := t.service[method[:i+1]]; ok {
				return v, true
			}
		}
	}
	var zero V
	return zero, false
}

// Len returns the number of patterns in the table.
func (t MethodTable[V]) Len() int { return len(t.exact) + len(t.service) }

// CheckMethodPattern accepts "/pkg.Service/Method" and "/pkg.Service/*".
func CheckMethodPattern(p string) error {
	svc, name, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !strings.HasPrefix(p, "/") || !ok || svc == "" || name == "" ||
		strings.Contains(name, "/") || (name != "*" && strings.Contains(name, "*")) || strings.Contains(svc, "*") {
		return errors.New(`want "/package.Service/Method" or "/package.Service/*"`)
	}
	return nil
}
