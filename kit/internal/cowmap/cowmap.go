// Package cowmap has a map from strings that is read without locking or
// allocating and copied on every insertion: for small key sets that stop
// growing, such as a client's targets or a server's methods, read on every
// call.
package cowmap

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Map is a copy-on-write map. The zero value is empty and ready; a Map must
// not be copied after first use.
type Map[V any] struct {
	mu sync.Mutex // serialises insertions
	m  atomic.Pointer[map[string]V]
}

// Load returns the value of key.
func (c *Map[V]) Load(key string) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[key]
		return v, ok
	}
	var zero V
	return zero, false
}

// Len returns the number of keys.
func (c *Map[V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// LoadOrStore returns the value of key, storing v first when there is none.
func (c *Map[V]) LoadOrStore(key string, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if cur, ok := (*old)[key]; ok {
			return cur
		}
	}
	m := make(map[string]V, c.Len()+1)
	if old != nil {
		maps.Copy(m, *old)
	}
	m[key] = v
	c.m.Store(&m)
	return v
}

// LoadOrBuild returns the value of key; when there is none it builds one,
// and stores it while the map holds fewer than limit keys (past the limit
// every call builds its own).
func (c *Map[V]) LoadOrBuild(key string, limit int, build func() V) V {
	if v, ok := c.Load(key); ok {
		return v
	}
	v := build()
	if c.Len() >= limit {
		return v
	}
	return c.LoadOrStore(key, v)
}
