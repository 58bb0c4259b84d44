package balancer

import (
	"log/slog"
	"slices"

	"google.golang.org/grpc/resolver"
)

// What a resolver tells the balancer of its ClientConn beyond the service
// config travels in the resolver state's attributes, as grpc-go's xDS
// resolver hands its client to the xDS policies: nothing is process-wide.

type monitorKey struct{}

type loggerKey struct{}

type datacentersKey struct{}

// SetMonitor returns s carrying m: the kit_weighted balancer that receives s
// reports its statistics to m (see [Monitor.Stats]) from then on, and
// leaves it when it closes or a later state carries another Monitor or
// none. kit clients shown on a server's admin pages get one from kit.
func SetMonitor(s resolver.State, m *Monitor) resolver.State {
	s.Attributes = s.Attributes.WithValue(monitorKey{}, m)
	return s
}

// SetLogger returns s carrying l: the kit_weighted balancer that receives s
// logs its state changes (demotions, ejections, re-admissions, panic mode)
// to l. Without it, a balancer logs to the slog.Default() of the time it was
// built. kit clients pass their kit.WithLogger this way.
func SetLogger(s resolver.State, l *slog.Logger) resolver.State {
	s.Attributes = s.Attributes.WithValue(loggerKey{}, l)
	return s
}

// SetDatacenters returns s carrying the datacenter failover of its target:
// the endpoints of s are those of datacenter active, and order lists the
// target's datacenters in failover order, the local one first. The
// kit_weighted balancer that receives s reports both in its statistics
// ([TargetStats].Datacenters) and counts each change of active datacenter
// as a failover ([DatacenterStats].Switches). kit's consul resolver sets
// it on targets with a failover list; order is copied.
func SetDatacenters(s resolver.State, active string, order []string) resolver.State {
	s.Attributes = s.Attributes.WithValue(datacentersKey{}, datacenters{active: active, order: slices.Clone(order)})
	return s
}

// datacenters is the value of SetDatacenters.
type datacenters struct {
	active string
	order  []string
}

// Equal reports whether o is the same datacenters; grpc-go compares
// attribute values with it (a slice makes == panic).
func (d datacenters) Equal(o any) bool {
	od, ok := o.(datacenters)
	return ok && d.active == od.active && slices.Equal(d.order, od.order)
}

// DatacentersOf returns the datacenters s carries ([SetDatacenters]), and
// whether it carries any.
func DatacentersOf(s resolver.State) (active string, order []string, ok bool) {
	d, ok := datacentersOf(s)
	return d.active, slices.Clone(d.order), ok
}

func datacentersOf(s resolver.State) (datacenters, bool) {
	d, ok := s.Attributes.Value(datacentersKey{}).(datacenters)
	return d, ok
}

// monitorOf returns the Monitor s carries, nil if none.
func monitorOf(s resolver.State) *Monitor {
	m, _ := s.Attributes.Value(monitorKey{}).(*Monitor)
	return m
}

// loggerOf returns the logger s carries, nil if none.
func loggerOf(s resolver.State) *slog.Logger {
	l, _ := s.Attributes.Value(loggerKey{}).(*slog.Logger)
	return l
}
