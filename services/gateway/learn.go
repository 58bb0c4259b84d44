package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
)

// Catalog lists the services of a registry.
type Catalog interface {
	// Services returns the names of the registered services once the
	// registry's state differs from index (a blocking query; 0 answers at
	// once), and the index of the answer.
	Services(ctx context.Context, index uint64) (names []string, next uint64, err error)
}

// ConsulCatalog is the [Catalog] of a Consul agent: blocking queries on
// /v1/catalog/services. The token needs service:read on the services.
func ConsulCatalog(c *api.Client) Catalog { return consulCatalog{c} }

type consulCatalog struct{ c *api.Client }

func (c consulCatalog) Services(ctx context.Context, index uint64) ([]string, uint64, error) {
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: time.Minute}).WithContext(ctx)
	m, meta, err := c.c.Catalog().Services(q)
	if err != nil {
		return nil, 0, err
	}
	return slices.Sorted(maps.Keys(m)), meta.LastIndex, nil
}

// Learner keeps a gateway's backends those of a registry: for each service
// with healthy instances it learns the API through the gRPC server
// reflection of an instance (again when the fingerprint the instances
// publish, [kit.MetaAPI], changes) and gives it to the gateway with the
// public methods they all publish ([kit.PublicMethods]). A service that is
// still in the catalog without a healthy instance keeps its routes, which
// answer 503 as a service that is down should; its routes go when it
// leaves the catalog (its last instance deregistered). A service that
// serves no reflection or has no annotated method has no routes: logged
// once, and tried again with backoff (up to a minute).
type Learner struct {
	gw      *Gateway
	catalog Catalog
	disc    registry.Discovery
	dial    func(name string) (grpc.ClientConnInterface, error)
	skip    map[string]bool
	logger  *slog.Logger

	// reflect connects to an instance for reflection; tests replace it.
	reflect func(addr string) (*grpc.ClientConn, error)
}

// NewLearner returns a learner for gw over a registry's catalog and
// discovery. dial returns the connection of the calls to the service name
// (a kit client on consul:///name), made when the service gets routes; the
// learner closes it (when it is an io.Closer) once the service has left the
// catalog and its routes are gone. The services named in skip (the gateway
// itself, "consul") are not learned.
func NewLearner(gw *Gateway, catalog Catalog, disc registry.Discovery, dial func(name string) (grpc.ClientConnInterface, error), skip ...string) *Learner {
	l := &Learner{gw: gw, catalog: catalog, disc: disc, dial: dial, skip: map[string]bool{}, logger: gw.logger,
		reflect: func(addr string) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}}
	for _, s := range skip {
		l.skip[s] = true
	}
	return l
}

// Run follows the catalog until ctx ends, then removes the routes it gave
// the gateway and returns.
func (l *Learner) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	type watch struct {
		stop context.CancelFunc
		done chan struct{} // closed when the follower has removed the routes
	}
	watches := map[string]watch{}
	defer func() {
		cancel()
		wg.Wait()
	}()
	var index uint64
	backoff := newBackoff()
	for ctx.Err() == nil {
		names, next, err := l.catalog.Services(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := backoff.next()
			l.logger.Warn("gateway: listing the services failed; retrying", "error", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		backoff.reset()
		if next < index { // the registry's index went back (a restart): start again
			next = 0
		}
		index = next
		want := map[string]bool{}
		for _, n := range names {
			if !l.skip[n] {
				want[n] = true
			}
		}
		stopping := map[string]chan struct{}{}
		for n, w := range watches {
			if !want[n] {
				w.stop()
				stopping[n] = w.done
				delete(watches, n)
			}
		}
		for n := range want {
			if _, ok := watches[n]; ok {
				continue
			}
			wctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			watches[n] = watch{stop, done}
			prev := stopping[n] // a follower of the same name that has not removed its routes yet
			wg.Go(func() {
				defer close(done)
				if prev != nil {
					<-prev
				}
				l.follow(wctx, n)
			})
		}
		// Catalog changes come in bursts (a rolling start): answer the
		// next one no sooner than this.
		if !sleep(ctx, 100*time.Millisecond) {
			return
		}
	}
}

// follow keeps the routes of the service name as its instances change,
// until ctx ends; then it removes them.
func (l *Learner) follow(ctx context.Context, name string) {
	// The client of the service's calls, made once it has routes and closed
	// after they are gone.
	var conn grpc.ClientConnInterface
	defer func() {
		if c, ok := conn.(io.Closer); ok {
			c.Close()
		}
	}()
	defer l.gw.RemoveAPI(name)
	w, err := l.disc.Watch(ctx, name)
	if err != nil {
		l.logger.Warn("gateway: cannot watch a service", "service", name, "error", err)
		return
	}
	defer w.Stop()
	sets := make(chan []registry.Instance)
	go func() {
		defer close(sets)
		for {
			set, err := w.Next(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, registry.ErrWatcherStopped) {
					return
				}
				continue // Next backs off itself; the last set stays
			}
			select {
			case sets <- set:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		set     []registry.Instance
		learned string   // the key of the API served, "" for none
		public  []string // the public methods served
		retry   <-chan time.Time
		failed  string // the key that failed last, logged once
	)
	backoff := newBackoff()
	for {
		select {
		case s, ok := <-sets:
			if !ok {
				return
			}
			set = s
		case <-retry:
			retry = nil
		case <-ctx.Done():
			return
		}
		if len(set) == 0 {
			// No healthy instance, but the service is still in the catalog
			// (crashed, failing its checks): its routes stay and answer 503
			// (the kit client finds nobody to call), as a service that is
			// down should; they go when it leaves the catalog.
			continue
		}
		key, members := apiKey(set)
		pub := commonPublic(set)
		if key == learned {
			if !slices.Equal(pub, public) {
				if api, ok := l.gw.api(name); ok {
					api.Public = pub
					l.gw.SetAPI(api)
					public = pub
				}
			}
			continue
		}
		if retry != nil && key == failed {
			continue // a retry is due already
		}
		api, err := l.learn(ctx, name, members)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := backoff.next()
			if key != failed {
				l.logger.Warn("gateway: cannot learn a service's routes; it has none until then", "service", name,
					"error", err, "retry_in", d)
				failed = key
			}
			retry = time.After(d)
			continue
		}
		backoff.reset()
		failed = ""
		if conn == nil {
			if conn, err = l.dial(name); err != nil {
				conn = nil
				l.logger.Error("gateway: no client for a service", "service", name, "error", err)
				continue
			}
		}
		api.Public, api.Conn = pub, conn
		if err := l.gw.SetAPI(api); err != nil {
			l.logger.Error("gateway: routes not set", "service", name, "error", err)
			continue
		}
		learned, public = key, pub
		l.logger.Info("gateway: routes learned", "service", name, "routes", len(l.gw.routesOf(name)))
	}
}

// apiKey returns the key of the API a set of instances serves, and the
// instances that serve it: the fingerprint most of them publish (the
// greatest on a tie, so that a rolling upgrade moves to the new API when
// half the instances run it), or, for instances that publish none, their
// addresses (an API learnt again when they change).
func apiKey(set []registry.Instance) (string, []registry.Instance) {
	count := map[string]int{}
	for _, in := range set {
		count[in.Meta[kit.MetaAPI]]++
	}
	best := slices.MaxFunc(slices.Collect(maps.Keys(count)), func(a, b string) int {
		return cmp.Or(cmp.Compare(count[a], count[b]), cmp.Compare(a, b))
	})
	members := slices.DeleteFunc(slices.Clone(set), func(in registry.Instance) bool { return in.Meta[kit.MetaAPI] != best })
	if best != "" {
		return "api:" + best, members
	}
	addrs := make([]string, len(members))
	for i, in := range members {
		addrs[i] = in.HostPort()
	}
	slices.Sort(addrs)
	return "addrs:" + strings.Join(addrs, ","), members
}

// commonPublic returns the public methods every instance of set publishes:
// a method is public at the gateway only when no instance would refuse an
// anonymous call of it.
func commonPublic(set []registry.Instance) []string {
	var out []string
	for i, in := range set {
		pub := kit.PublicMethods(in.Meta)
		if i == 0 {
			out = pub
			continue
		}
		out = slices.DeleteFunc(out, func(m string) bool { return !slices.Contains(pub, m) })
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// learn asks the instances of members, in turn, for their API.
func (l *Learner) learn(ctx context.Context, name string, members []registry.Instance) (API, error) {
	var errs []error
	for _, in := range members[:min(len(members), 3)] {
		cc, err := l.reflect(in.HostPort())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		services, types, err := Reflect(rctx, cc)
		cancel()
		cc.Close()
		if err == nil {
			return API{Name: name, Services: services, Types: types}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", in.HostPort(), err))
	}
	return API{}, errors.Join(errs...)
}

// Limits of what [Reflect] takes from a server.
const (
	maxReflectFiles = 1000
	maxReflectBytes = 32 << 20
)

// Reflect asks a server for its services and their descriptors through
// gRPC server reflection (grpc.reflection.v1), leaving out the health and
// reflection services. It takes at most 1000 files of 32 MiB in all.
func Reflect(ctx context.Context, cc grpc.ClientConnInterface) ([]protoreflect.ServiceDescriptor, *dynamicpb.Types, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reflection: %w", err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) (*reflectionpb.ServerReflectionResponse, error) {
		if err := stream.Send(req); err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			return nil, fmt.Errorf("reflection: %s (code %d)", e.GetErrorMessage(), e.GetErrorCode())
		}
		return resp, nil
	}
	resp, err := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		if n := s.GetName(); n != "grpc.health.v1.Health" && !strings.HasPrefix(n, "grpc.reflection.") {
			names = append(names, n)
		}
	}
	files := map[string]*descriptorpb.FileDescriptorProto{}
	size := 0
	take := func(resp *reflectionpb.ServerReflectionResponse) error {
		for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			if size += len(b); size > maxReflectBytes || len(files) >= maxReflectFiles {
				return errors.New("reflection: the descriptors are too large")
			}
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("reflection: a file descriptor: %w", err)
			}
			files[fd.GetName()] = fd
		}
		return nil
	}
	for _, n := range names {
		resp, err := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: n}})
		if err != nil {
			return nil, nil, err
		}
		if err := take(resp); err != nil {
			return nil, nil, err
		}
	}
	// A server sends the imports it did not send before on the stream;
	// ask for any still missing. Each file's imports are looked at once,
	// and no more are asked for than the files allowed: a server may list
	// many (a few bytes each), and the deadline does not stop this loop.
	scanned := map[string]bool{}
	for {
		var missing []string
		asked := map[string]bool{}
		for name, fd := range files {
			if scanned[name] {
				continue
			}
			scanned[name] = true
			for _, dep := range fd.GetDependency() {
				if files[dep] != nil || asked[dep] {
					continue
				}
				if len(files)+len(missing) >= maxReflectFiles {
					return nil, nil, errors.New("reflection: the descriptors are too large")
				}
				asked[dep] = true
				missing = append(missing, dep)
			}
		}
		if len(missing) == 0 {
			break
		}
		for _, dep := range missing {
			resp, err := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}})
			if err != nil {
				return nil, nil, err
			}
			if err := take(resp); err != nil {
				return nil, nil, err
			}
			if files[dep] == nil {
				return nil, nil, fmt.Errorf("reflection: the server did not send %s", dep)
			}
		}
	}
	stream.CloseSend()
	set := &descriptorpb.FileDescriptorSet{}
	for _, k := range slices.Sorted(maps.Keys(files)) {
		set.File = append(set.File, files[k])
	}
	reg, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, nil, fmt.Errorf("reflection: the descriptors are invalid: %w", err)
	}
	var services []protoreflect.ServiceDescriptor
	for _, n := range names {
		d, err := reg.FindDescriptorByName(protoreflect.FullName(n))
		if err != nil {
			return nil, nil, fmt.Errorf("reflection: service %s: %w", n, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, nil, fmt.Errorf("reflection: %s is not a service", n)
		}
		services = append(services, sd)
	}
	return services, dynamicpb.NewTypes(reg), nil
}

// backoff is an exponential backoff of 1s to 1m.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, time.Second), time.Minute)
	return b.d
}

func (b *backoff) reset() { b.d = 0 }

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
