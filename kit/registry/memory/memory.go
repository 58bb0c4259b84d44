package memory

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/grpckit/grpckit/kit/registry"
)

// ErrDatacenter is returned by [Registry.Watch] when a datacenter is asked for:
// the in-memory registry has none.
var ErrDatacenter = errors.New("memory: datacenters are not supported")

// Registry keeps instances in memory. The zero value is not usable; call [New].
// It is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	services map[string]map[string]registry.Instance // by name, then ID; guarded by mu
	changed  chan struct{}                           // closed and replaced on every change; guarded by mu
}

var (
	_ registry.Registrar = (*Registry)(nil)
	_ registry.Discovery = (*Registry)(nil)
)

// New returns an empty registry.
func New() *Registry {
	return &Registry{services: make(map[string]map[string]registry.Instance), changed: make(chan struct{})}
}

// Register adds or replaces inst. Its Health is set to passing.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	inst.Health = registry.HealthPassing
	inst.Tags = slices.Clone(inst.Tags)
	inst.Meta = maps.Clone(inst.Meta)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(inst.ID) // an ID may move to another service name
	byID := r.services[inst.Name]
	if byID == nil {
		byID = make(map[string]registry.Instance)
		r.services[inst.Name] = byID
	}
	byID[inst.ID] = inst
	r.notifyLocked()
	return nil
}

// Deregister removes the instance with inst's ID, if present.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.removeLocked(inst.ID) {
		r.notifyLocked()
	}
	return nil
}

// removeLocked deletes the instance with id from whichever service holds it.
func (r *Registry) removeLocked(id string) bool {
	for _, byID := range r.services {
		if _, ok := byID[id]; ok {
			delete(byID, id)
			return true
		}
	}
	return false
}

func (r *Registry) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// snapshot returns the current set of name filtered by tag, and the channel
// that will be closed on the next change.
func (r *Registry) snapshot(name, tag string) ([]registry.Instance, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := make([]registry.Instance, 0, len(r.services[name]))
	for _, inst := range r.services[name] {
		if tag == "" || slices.Contains(inst.Tags, tag) {
			inst.Meta = maps.Clone(inst.Meta) // watchers must not share the stored map
			set = append(set, inst)
		}
	}
	registry.SortByID(set)
	return set, r.changed
}

// Watch follows the instances of name. A [registry.WithDatacenter] option gives
// [ErrDatacenter].
func (r *Registry) Watch(ctx context.Context, name string, opts ...registry.WatchOption) (registry.Watcher, error) {
	o := registry.NewWatchOptions(opts...)
	if o.Datacenter != "" {
		return nil, ErrDatacenter
	}
	ctx, cancel := context.WithCancel(ctx)
	return &watcher{r: r, name: name, tag: o.Tag, ctx: ctx, cancel: cancel}, nil
}

type watcher struct {
	r      *Registry
	name   string
	tag    string
	ctx    context.Context // done when the watch ends
	cancel context.CancelFunc

	last []registry.Instance // set returned last; only Next touches it
	sent bool                // whether Next returned a set yet
}

func (w *watcher) Next(ctx context.Context) ([]registry.Instance, error) {
	for {
		if w.ctx.Err() != nil {
			return nil, registry.ErrWatcherStopped
		}
		set, changed := w.r.snapshot(w.name, w.tag)
		if !w.sent || !registry.EqualSets(set, w.last) {
			w.last, w.sent = set, true
			return set, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.ctx.Done():
			return nil, registry.ErrWatcherStopped
		}
	}
}

func (w *watcher) Stop() { w.cancel() }
