package consul

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/consul/api"
)

// FuzzInstances feeds arbitrary /v1/health/service answers through the
// decoding and conversion the watcher does: nothing may panic and every
// instance returned must be valid.
func FuzzInstances(f *testing.F) {
	f.Add([]byte(entries(entrySpec{"a", 1, api.HealthPassing, 1}, entrySpec{"b", 2, api.HealthWarning, 3})))
	f.Add([]byte(`[{"Service":{"ID":"x","Port":70000}},null,{"Checks":[null]},{"Node":{},"Service":{"ID":"y","Port":1},"Checks":[{"CheckID":"_node_maintenance"}]}]`))
	f.Add([]byte(`[{"Service":{"ID":"","Service":"","Address":"","Port":-1,"Weights":{"Passing":-5}}}]`))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body []byte) {
		var es []*api.ServiceEntry
		if json.Unmarshal(body, &es) != nil {
			return // the api client reports a decode error; the watcher keeps its last set
		}
		for _, inst := range instances(es, "user", logger) {
			if err := inst.Validate(); err != nil {
				t.Errorf("instances returned an invalid instance: %v", err)
			}
			_ = inst.Weight()
		}
	})
}
