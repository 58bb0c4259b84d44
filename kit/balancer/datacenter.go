package balancer

import (
	"maps"
	"slices"
)

// DatacenterStats is the datacenter failover of a target, as its resolver
// states it ([SetDatacenters]).
type DatacenterStats struct {
	// Active is the datacenter whose endpoints the balancer has.
	Active string `json:"active"`
	// Order lists the target's datacenters in failover order, the local
	// one first.
	Order []string `json:"order"`
	// Failover is true when Active is not the local datacenter (Order[0]).
	Failover bool `json:"failover"`
	// Switches counts, per datacenter, the times the active datacenter
	// changed to it: failovers, and switches back to the local one. The
	// datacenter of the balancer's first state is no switch.
	Switches map[string]int64 `json:"switches"`
}

// failover is a tracker's record of its target's datacenters.
type failover struct {
	datacenters
	switches map[string]int64 // per datacenter, changes of active to it
}

// setDatacenters records the datacenters of the latest resolver state (ok:
// it carries some, see [SetDatacenters]) and counts a change of active
// datacenter. A state without any forgets them.
func (t *tracker) setDatacenters(d datacenters, ok bool) {
	t.mu.Lock()
	defer t.unlock()
	switch {
	case !ok:
		t.failover = nil
		return
	case t.failover == nil:
		t.failover = &failover{switches: map[string]int64{}}
	case t.failover.active != d.active:
		t.failover.switches[d.active]++
	}
	t.failover.datacenters = d
}

// datacenterStatsLocked returns the stats of the target's datacenters, nil
// without any.
func (t *tracker) datacenterStatsLocked() *DatacenterStats {
	f := t.failover
	if f == nil {
		return nil
	}
	return &DatacenterStats{
		Active:   f.active,
		Order:    slices.Clone(f.order),
		Failover: len(f.order) > 0 && f.active != f.order[0],
		Switches: maps.Clone(f.switches),
	}
}
