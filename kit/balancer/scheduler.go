package balancer

import (
	"container/heap"
	"math"
)

// maxTable caps the length of a schedule. Weights whose exact ratios would
// need more slots are scaled down (each endpoint keeps at least one slot).
const maxTable = 1 << 16

// weightUnits is the resolution of effective weights: base weight times
// multiplier times ramp factor, in 1/1600ths (so that 1/16 demotion steps
// and whole-percent ramp steps stay exact).
const weightUnits = 1600

// schedule returns a pick table for the given effective weights: entry k of
// the table is the index of the endpoint for the k-th pick, endpoint i
// appears in proportion to weights[i], and its appearances are spread evenly
// (earliest-deadline-first order). Integer weight ratios are exact.
func schedule(weights []float64) []int32 {
	units := make([]uint64, len(weights))
	var g uint64
	for i, w := range weights {
		u := uint64(math.Round(w * weightUnits))
		if u == 0 {
			u = 1
		}
		units[i] = u
		g = gcd(g, u)
	}
	var total uint64
	for i := range units {
		units[i] /= g
		total += units[i]
	}
	if total > maxTable {
		scaled := uint64(0)
		for i, u := range units {
			units[i] = max(1, u*maxTable/total)
			scaled += units[i]
		}
		total = scaled
	}
	table := make([]int32, 0, total)
	h := make(edf, len(units))
	for i, u := range units {
		h[i] = edfItem{deadline: 1 / float64(u), step: 1 / float64(u), idx: int32(i), left: u}
	}
	heap.Init(&h)
	for len(h) > 0 {
		it := &h[0]
		table = append(table, it.idx)
		it.left--
		if it.left == 0 {
			heap.Pop(&h)
			continue
		}
		it.deadline += it.step
		heap.Fix(&h, 0)
	}
	return table
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// edf is a min-heap of endpoints by their next deadline.
type edf []edfItem

type edfItem struct {
	deadline, step float64
	idx            int32
	left           uint64
}

func (h edf) Len() int { return len(h) }
func (h edf) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].idx < h[j].idx
}
func (h edf) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *edf) Push(x any)   { *h = append(*h, x.(edfItem)) }
func (h *edf) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
