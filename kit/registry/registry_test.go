package registry_test

import (
	"errors"
	"math"
	"testing"

	"github.com/grpckit/grpckit/kit/registry"
)

func TestValidate(t *testing.T) {
	ok := registry.Instance{ID: "u1", Name: "user", Address: "10.0.0.1", Port: 9000}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid instance: %v", err)
	}
	for name, mutate := range map[string]func(*registry.Instance){
		"no id":           func(i *registry.Instance) { i.ID = "" },
		"no name":         func(i *registry.Instance) { i.Name = "" },
		"bad utf-8 name":  func(i *registry.Instance) { i.Name = "\xff" },
		"no address":      func(i *registry.Instance) { i.Address = "" },
		"port 0":          func(i *registry.Instance) { i.Port = 0 },
		"port 65536":      func(i *registry.Instance) { i.Port = 65536 },
		"negative weight": func(i *registry.Instance) { i.Weights.Warning = -1 },
	} {
		inst := ok
		mutate(&inst)
		if err := inst.Validate(); !errors.Is(err, registry.ErrInvalidInstance) {
			t.Errorf("%s: Validate = %v, want ErrInvalidInstance", name, err)
		}
	}
}

func TestWeight(t *testing.T) {
	for _, tc := range []struct {
		name string
		inst registry.Instance
		want uint32
	}{
		{"default", registry.Instance{}, 1},
		{"passing", registry.Instance{Weights: registry.Weights{Passing: 8, Warning: 2}, Health: registry.HealthPassing}, 8},
		{"warning", registry.Instance{Weights: registry.Weights{Passing: 8, Warning: 2}, Health: registry.HealthWarning}, 2},
		{"warning weight 0", registry.Instance{Weights: registry.Weights{Passing: 8}, Health: registry.HealthWarning}, 1},
		{"meta override", registry.Instance{Meta: map[string]string{"weight": "50"}, Weights: registry.Weights{Passing: 8}}, 50},
		{"meta zero ignored", registry.Instance{Meta: map[string]string{"weight": "0"}, Weights: registry.Weights{Passing: 8}}, 8},
		{"meta junk ignored", registry.Instance{Meta: map[string]string{"weight": "heavy"}, Weights: registry.Weights{Passing: 8}}, 8},
		{"meta huge clamped", registry.Instance{Meta: map[string]string{"weight": "99999999999"}}, 1 << 31},
		{"warning wins over meta", registry.Instance{Meta: map[string]string{"weight": "50"}, Weights: registry.Weights{Warning: 2}, Health: registry.HealthWarning}, 2},
		{"huge passing clamped", registry.Instance{Weights: registry.Weights{Passing: math.MaxInt}}, uint32(min(int64(math.MaxInt), 1<<31))},
	} {
		if got := tc.inst.Weight(); got != tc.want {
			t.Errorf("%s: Weight() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSortAndEqualSets(t *testing.T) {
	a := []registry.Instance{{ID: "b", Port: 2}, {ID: "a", Port: 1, Tags: []string{"x"}}}
	b := []registry.Instance{{ID: "a", Port: 1, Tags: []string{"x"}}, {ID: "b", Port: 2}}
	registry.SortByID(a)
	registry.SortByID(b)
	if !registry.EqualSets(a, b) {
		t.Errorf("sets %v and %v differ after sorting", a, b)
	}
	b[0].Tags = []string{"y"}
	if registry.EqualSets(a, b) {
		t.Error("sets with different tags compare equal")
	}
}
