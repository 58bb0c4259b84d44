package retry

import (
	"sync"
	"sync/atomic"
)

// cowMap is a map from strings that is read without locking or allocating
// and copied on every insertion: for small key sets that stop growing, such
// as a client's targets and methods. The zero value is empty and ready.
type cowMap[V any] struct {
	mu sync.Mutex // serialises insertions
	m  atomic.Pointer[map[string]V]
}

func (c *cowMap[V]) load(key string) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[key]
		return v, ok
	}
	var zero V
	return zero, false
}

func (c *cowMap[V]) len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// loadOrStore returns the value of key, storing v first when there is none.
func (c *cowMap[V]) loadOrStore(key string, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if cur, ok := (*old)[key]; ok {
			return cur
		}
	}
	m := make(map[string]V, c.len()+1)
	if old != nil {
		for k, x := range *old {
			m[k] = x
		}
	}
	m[key] = v
	c.m.Store(&m)
	return v
}
