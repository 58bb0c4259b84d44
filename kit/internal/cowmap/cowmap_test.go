package cowmap

import (
	"strconv"
	"sync"
	"testing"
)

func TestLoadOrBuild(t *testing.T) {
	var m Map[int]
	builds := 0
	build := func() int { builds++; return builds }
	if v := m.LoadOrBuild("a", 2, build); v != 1 {
		t.Fatalf("first build = %d", v)
	}
	if v := m.LoadOrBuild("a", 2, build); v != 1 || builds != 1 {
		t.Errorf("second lookup = %d after %d builds, want the stored 1", v, builds)
	}
	m.LoadOrBuild("b", 2, build)
	if v := m.LoadOrBuild("c", 2, build); v != 3 || m.Len() != 2 {
		t.Errorf("past the limit: value %d, %d keys; want a fresh build and 2 keys", v, m.Len())
	}
	if _, ok := m.Load("c"); ok {
		t.Error("a key past the limit was stored")
	}
}

func TestConcurrentInsertions(t *testing.T) {
	var m Map[string]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				k := strconv.Itoa(i)
				if v := m.LoadOrStore(k, k+"/"+strconv.Itoa(g)); v[:len(k)] != k {
					t.Errorf("key %s holds %s", k, v)
				}
			}
		})
	}
	wg.Wait()
	if m.Len() != 100 {
		t.Errorf("%d keys, want 100", m.Len())
	}
}
