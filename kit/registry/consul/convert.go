package consul

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/registry"
)

// instances turns a /v1/health/service answer into the healthy instances of
// name, sorted by ID. Entries that cannot be dialled (no service, no address,
// a port outside 1..65535) are skipped and logged; critical and maintenance
// instances are left out.
func instances(entries []*api.ServiceEntry, name string, logger *slog.Logger) []registry.Instance {
	set := make([]registry.Instance, 0, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil {
			logger.LogAttrs(context.Background(), slog.LevelWarn, "consul answer has an entry without service; skipped", slog.String("name", name))
			continue
		}
		health, ok := aggregate(e.Checks)
		if !ok {
			continue
		}
		addr := e.Service.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		inst := registry.Instance{
			ID:      e.Service.ID,
			Name:    e.Service.Service,
			Address: addr,
			Port:    e.Service.Port,
			Tags:    slices.Clone(e.Service.Tags),
			Meta:    maps.Clone(e.Service.Meta),
			Weights: registry.Weights{Passing: e.Service.Weights.Passing, Warning: e.Service.Weights.Warning},
			Health:  health,
		}
		if inst.Name == "" {
			inst.Name = name
		}
		if err := inst.Validate(); err != nil {
			logger.LogAttrs(context.Background(), slog.LevelWarn, "consul answer has an unusable instance; skipped",
				slog.String("name", name), slog.Any("error", err))
			continue
		}
		set = append(set, inst)
	}
	registry.SortByID(set)
	return set
}

// aggregate returns the instance's health from its checks, with ok false for
// instances that must not get traffic (critical, maintenance, unknown status).
func aggregate(checks api.HealthChecks) (registry.Health, bool) {
	health := registry.HealthPassing
	for _, c := range checks {
		if c == nil {
			continue
		}
		if c.CheckID == api.NodeMaint || strings.HasPrefix(c.CheckID, api.ServiceMaintPrefix) {
			return "", false
		}
		switch c.Status {
		case api.HealthPassing:
		case api.HealthWarning:
			health = registry.HealthWarning
		default:
			return "", false
		}
	}
	return health, true
}
