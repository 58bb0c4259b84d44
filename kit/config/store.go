package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"
)

// ErrPrinted is returned by [Load] when the -print-config flag asked for
// the effective configuration, which Load printed; the program should exit
// with status 0 (like [flag.ErrHelp]).
var ErrPrinted = errors.New("config: printed the configuration (-print-config)")

// Snapshot is one accepted configuration. It is immutable: readers share
// it and must not modify Value (maps and slices included).
type Snapshot[T any] struct {
	// Value is the configuration.
	Value T
	// Version is 1 for the configuration loaded at start and grows by one
	// with every accepted change.
	Version uint64
	// Source names the change that made this snapshot: "start", "file
	// <path>", "consul <key>".
	Source string
	// Time is when the snapshot was made.
	Time time.Time
}

// Standard returns the standard sections of the snapshot, or nil when its
// type does not embed [Standard].
func (s *Snapshot[T]) Standard() *Standard { return standardOf(&s.Value) }

// Info describes a store for /debug/kit.
type Info struct {
	Service string    `json:"service"`
	Version uint64    `json:"version"`
	Source  string    `json:"source"` // of the current snapshot
	Time    time.Time `json:"time"`
	// Sources are the layers in order of precedence, lowest first.
	Sources []string `json:"sources"`
	// Pending are the sources whose newest input is not in force because
	// the configuration it makes was refused; any later change of any source
	// tries it again.
	Pending []string `json:"pending,omitempty"`
	// Rejected counts changes refused since start; LastError says why the
	// latest was refused.
	Rejected      uint64    `json:"rejected"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Store holds a service's current configuration, keeps it up to date with
// its file and Consul KV sources, and tells subscribers about changes. All
// methods are safe for concurrent use.
type Store[T any] struct {
	name   string
	o      options
	fields []field

	cur atomic.Pointer[Snapshot[T]]

	mu       sync.Mutex // serializes changes; guards the fields below
	latest   layers     // the newest input of every source, in force or not
	accepted layers     // the inputs of the current snapshot
	subs     map[int]func(*Snapshot[T])
	nextSub  int
	rejected uint64
	lastErr  error
	lastErrT time.Time

	notifyMu  sync.Mutex // orders deliveries; held while subscribers run
	delivered uint64     // version delivered last; guarded by notifyMu

	kv        *api.Client // client of the KV source; nil when there is none
	closeIdle func()      // closes the idle connections of a client Load made
	stop      context.CancelFunc
	done      sync.WaitGroup
}

// layers are the inputs of a configuration, lowest precedence first. A nil
// field is a source that contributes nothing.
type layers struct {
	defaults []byte         // YAML of the defaults
	file     []byte         // contents of the file
	env      map[string]any // from the environment
	flags    map[string]any // from the command line
	kv       []byte         // value of the Consul key
}

// Load builds the configuration of service from defaults and the sources
// opts name, and starts watching the file and Consul KV sources (stop with
// [Store.Close]). Sources, later wins: defaults, YAML file, environment,
// flags, Consul KV.
//
// A malformed file, environment variable or flag, or an invalid result, is
// an error. A Consul KV document that is invalid at start, or sets a local
// setting ([LocalError]), is refused like a later change (logged, visible
// in [Store.Info]) and the service starts without it; an unreachable Consul
// does not stop the start either: the watch applies the document once
// Consul answers. Consul's ACLs refusing the first read of the key is an
// error wrapping consul.ErrACLRefused (kit/registry/consul): a wrong token,
// or one without key:read on the key, must not look like an empty key.
//
// When T embeds [Standard] inline, the registry section names the Consul
// agent of the KV source (unless [WithConsul] or [WithoutConsul] says
// otherwise) and Load validates the standard sections; when T (or *T) has
// a Validate() error method, Load calls it on every candidate configuration.
func Load[T any](service string, defaults T, opts ...Option) (*Store[T], error) {
	if service == "" {
		return nil, errors.New("config: empty service name")
	}
	o := defaultOptions(service)
	for _, opt := range opts {
		opt.apply(&o)
	}
	fields, err := fieldsOf(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	if err := checkEnvNames(fields, o.envPrefix); err != nil {
		return nil, err
	}
	s := &Store[T]{name: service, o: o, fields: fields, subs: map[int]func(*Snapshot[T]){}}
	if sec, ok := any(&defaults).(interface{ Sections() *Standard }); ok && sec.Sections().Telemetry.ServiceName == "" {
		sec.Sections().Telemetry.ServiceName = service
	}
	if s.latest.defaults, err = yaml.Marshal(defaults); err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	flagged, err := s.parseFlags()
	if err != nil {
		return nil, err
	}
	if s.o.file != "" {
		if s.latest.file, err = os.ReadFile(s.o.file); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if s.latest.env, err = s.fromEnv(); err != nil {
		return nil, err
	}
	s.latest.flags = flagged
	v, err := s.build(s.latest)
	if err != nil {
		return nil, err
	}
	s.accepted = s.latest
	s.cur.Store(&Snapshot[T]{Value: v, Version: 1, Source: "start", Time: time.Now()})

	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if err := s.startConsul(ctx); err != nil {
		stop()
		return nil, err
	}
	if s.o.print {
		s.Close()
		if err := s.Print(s.o.stdout); err != nil {
			return nil, err
		}
		return nil, ErrPrinted
	}
	if s.o.file != "" {
		if err := s.watchFile(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Current returns the current snapshot. It never returns nil.
func (s *Store[T]) Current() *Snapshot[T] { return s.cur.Load() }

// Subscribe calls f with the snapshots accepted from now on, one call at a
// time and in version order, on the goroutine that made the change, after
// the subscribers that subscribed before it; when
// changes come faster than f returns, f may get only the newest. f may
// read the store (Current, Info, Subscribe) but must not wait for another
// change of it. Cancel stops the calls.
func (s *Store[T]) Subscribe(f func(*Snapshot[T])) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = f
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

// Name returns the service name the store was loaded for.
func (s *Store[T]) Name() string { return s.name }

// Info describes the current snapshot and the latest refused change.
func (s *Store[T]) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	in := Info{Service: s.name, Version: cur.Version, Source: cur.Source, Time: cur.Time,
		Sources: s.sourceNamesLocked(), Pending: s.pendingLocked(), Rejected: s.rejected, LastErrorTime: s.lastErrT}
	if s.lastErr != nil {
		in.LastError = s.lastErr.Error()
	}
	return in
}

// Close stops the watches and waits for them. Subscribers get no further
// calls.
func (s *Store[T]) Close() {
	s.stop()
	s.done.Wait()
	if s.closeIdle != nil {
		s.closeIdle()
	}
}

// Standard returns the standard sections of the current snapshot, or nil
// when T does not embed [Standard].
func (s *Store[T]) Standard() *Standard {
	return standardOf(&s.cur.Load().Value)
}

func standardOf[T any](v *T) *Standard {
	if sec, ok := any(v).(interface{ Sections() *Standard }); ok {
		std := *sec.Sections()
		return &std
	}
	return nil
}

// pendingLocked names the sources whose newest input is not in force.
func (s *Store[T]) pendingLocked() []string {
	var p []string
	if !bytes.Equal(s.latest.file, s.accepted.file) {
		p = append(p, "file "+s.o.file)
	}
	if !bytes.Equal(s.latest.kv, s.accepted.kv) || (s.latest.kv == nil) != (s.accepted.kv == nil) {
		p = append(p, "consul "+s.o.kvKey)
	}
	return p
}

// sourceNamesLocked lists the active layers.
func (s *Store[T]) sourceNamesLocked() []string {
	names := []string{"defaults"}
	if s.o.file != "" {
		names = append(names, "file "+s.o.file)
	}
	names = append(names, "env "+s.o.envPrefix+"*")
	if s.o.args != nil {
		names = append(names, "flags")
	}
	if s.kv != nil {
		names = append(names, "consul "+s.o.kvKey)
	}
	return names
}

// change records the newest input of a source (edit applies it to a copy
// of the layers) and makes a new snapshot when the result is valid: first
// with every source's newest input, which also retries inputs refused
// before; failing that, with this change over the inputs in force. A
// refused change is logged, counted, and changes no snapshot. An edit that
// changes no input does nothing.
func (s *Store[T]) change(source string, edit func(*layers)) error {
	s.mu.Lock()
	latest := s.latest
	edit(&latest)
	if reflect.DeepEqual(latest, s.latest) {
		s.mu.Unlock()
		return nil
	}
	s.latest = latest
	inputs := latest
	v, err := s.build(inputs)
	if err != nil {
		inputs = s.accepted
		edit(&inputs)
		if v2, err2 := s.build(inputs); err2 == nil {
			v, err = v2, nil
		}
	}
	if err != nil {
		s.rejected++
		s.lastErr, s.lastErrT = fmt.Errorf("change from %s refused: %w", source, err), time.Now()
		s.mu.Unlock()
		s.o.logger.LogAttrs(context.Background(), slog.LevelError, "config: change refused; the previous configuration stays",
			slog.String("service", s.name), slog.String("source", source), slog.Any("error", err))
		return err
	}
	s.accepted = inputs
	snap := &Snapshot[T]{Value: v, Version: s.cur.Load().Version + 1, Source: source, Time: time.Now()}
	s.cur.Store(snap)
	s.mu.Unlock()
	s.o.logger.LogAttrs(context.Background(), slog.LevelInfo, "config: changed",
		slog.String("service", s.name), slog.String("source", source), slog.Uint64("version", snap.Version))
	s.deliver()
	return nil
}

// deliver calls the subscribers with the current snapshot unless they had
// it already. The store's lock is not held, so subscribers may read it.
func (s *Store[T]) deliver() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	snap := s.cur.Load()
	if snap.Version <= s.delivered {
		return
	}
	s.delivered = snap.Version
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.subs))
	subs := make([]func(*Snapshot[T]), len(ids))
	for i, id := range ids {
		subs[i] = s.subs[id]
	}
	s.mu.Unlock()
	for _, f := range subs {
		f(snap)
	}
}

// MaxDocument is the largest configuration document (the file, the Consul
// key) a Store reads; a larger one is refused with an error, and the
// configuration in force stays.
const MaxDocument = 1 << 20

// build merges ls with koanf and decodes the result strictly into a T:
// unknown keys and wrongly typed values are errors. Then it validates. It
// reads only s's immutable fields.
func (s *Store[T]) build(ls layers) (T, error) {
	var zero T
	k := koanf.New(".")
	load := func(name string, p koanf.Provider, pa koanf.Parser) error {
		if err := k.Load(p, pa); err != nil {
			return fmt.Errorf("config: %s: %w", name, err)
		}
		return nil
	}
	if err := load("defaults", rawbytes.Provider(ls.defaults), nodeParser{}); err != nil {
		return zero, err
	}
	for _, doc := range []struct {
		name string
		b    []byte
	}{{"file " + s.o.file, ls.file}, {"consul " + s.o.kvKey, ls.kv}} {
		if len(doc.b) > MaxDocument {
			return zero, fmt.Errorf("config: %s: %d bytes, over the %d-byte limit of a configuration document", doc.name, len(doc.b), MaxDocument)
		}
	}
	if len(bytes.TrimSpace(ls.file)) > 0 {
		if err := load("file "+s.o.file, rawbytes.Provider(ls.file), nodeParser{}); err != nil {
			return zero, err
		}
	}
	if len(ls.env) > 0 {
		if err := load("environment", confmap.Provider(ls.env, ""), nil); err != nil {
			return zero, err
		}
	}
	if len(ls.flags) > 0 {
		if err := load("flags", confmap.Provider(ls.flags, ""), nil); err != nil {
			return zero, err
		}
	}
	if len(bytes.TrimSpace(ls.kv)) > 0 {
		if err := s.checkLocal(ls.kv); err != nil {
			return zero, fmt.Errorf("config: %w", err)
		}
		if err := load("consul "+s.o.kvKey, rawbytes.Provider(ls.kv), nodeParser{}); err != nil {
			return zero, err
		}
	}
	merged, err := yaml.Marshal(k.Raw())
	if err != nil {
		return zero, fmt.Errorf("config: %w", err)
	}
	var v T
	dec := yaml.NewDecoder(bytes.NewReader(merged))
	dec.KnownFields(true)
	if err := dec.Decode(&v); err != nil {
		return zero, fmt.Errorf("config: %w", explain(err, merged))
	}
	if err := validate(&v); err != nil {
		return zero, fmt.Errorf("config: invalid: %w", err)
	}
	return v, nil
}

// validate checks v's standard sections, then v's own Validate method.
func validate[T any](v *T) error {
	if sec, ok := any(v).(interface{ Sections() *Standard }); ok {
		if err := sec.Sections().Validate(); err != nil {
			return err
		}
	}
	if val, ok := any(v).(interface{ Validate() error }); ok {
		return val.Validate()
	}
	return nil
}

// fromEnv reads the environment variable of every field.
func (s *Store[T]) fromEnv() (map[string]any, error) {
	m := map[string]any{}
	for _, f := range s.fields {
		name := f.envName(s.o.envPrefix)
		raw, ok := s.o.lookupEnv(name)
		if !ok {
			continue
		}
		v, err := parseValue(f, raw)
		if err != nil {
			return nil, fmt.Errorf("config: environment %s: %w", name, err)
		}
		setPath(m, f.path, v)
	}
	return m, nil
}

// consulClient returns the client of the KV source: the one given, else one
// for the registry section of the start configuration, or nil for none.
func (s *Store[T]) consulClient() (*api.Client, error) {
	if s.o.consulOff || s.o.kvKey == "" {
		return nil, nil
	}
	if s.o.consul != nil {
		return s.o.consul, nil
	}
	std := s.Standard()
	if std == nil || std.Registry.ConsulOff() {
		return nil, nil
	}
	c, closeIdle, err := newConsulClient(std.Registry)
	s.closeIdle = closeIdle
	return c, err
}

// NewConsulClient returns a Consul client for the registry section r:
// Address and Token when set, else Consul's environment (CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN) and defaults. It returns nil, nil when r turns
// Consul off.
func NewConsulClient(r Registry) (*api.Client, error) {
	c, _, err := newConsulClient(r)
	return c, err
}

// newConsulClient is NewConsulClient, also returning what closes the
// client's idle connections.
func newConsulClient(r Registry) (*api.Client, func(), error) {
	if r.ConsulOff() {
		return nil, nil, nil
	}
	cfg := api.DefaultConfig()
	if r.Address != "" {
		cfg.Address = r.Address
	}
	if r.Token != "" {
		cfg.Token = r.Token
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("config: consul client for %q: %w", cfg.Address, err)
	}
	return c, cfg.Transport.CloseIdleConnections, nil
}
