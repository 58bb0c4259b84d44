package balancer

import (
	"log/slog"

	"google.golang.org/grpc/resolver"
)

// What a resolver tells the balancer of its ClientConn beyond the service
// config travels in the resolver state's attributes, as grpc-go's xDS
// resolver hands its client to the xDS policies: nothing is process-wide.

type monitorKey struct{}

type loggerKey struct{}

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
