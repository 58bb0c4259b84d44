package balancer

import (
	"testing"
	"unsafe"
)

// What Pick reads of a candidate and what Pick and Done write is one cache
// line: the first 64 bytes of an endpoint, whose size is a multiple of 64
// so that the allocator places every endpoint at a multiple of 64.
func TestEndpointLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("laid out for 64-bit platforms")
	}
	var ep endpoint
	if end := unsafe.Offsetof(ep.load) + unsafe.Sizeof(ep.load); end > 64 || unsafe.Offsetof(ep.t) != 64 {
		t.Errorf("the hot fields end at byte %d and the next field starts at %d, want 64 and 64", end, unsafe.Offsetof(ep.t))
	}
	if unsafe.Offsetof(ep.out)%64 != 0 {
		t.Errorf("the outcome counters start at byte %d, not on a cache line of their own", unsafe.Offsetof(ep.out))
	}
	if size := unsafe.Sizeof(ep); size%64 != 0 {
		t.Errorf("endpoint is %d bytes, not a multiple of 64: change endpointPad by %d", size, 64-size%64)
	}
	p := new(endpoint)
	if uintptr(unsafe.Pointer(p))%64 != 0 {
		t.Errorf("an endpoint allocated at %p, not at a multiple of 64", p)
	}
}
