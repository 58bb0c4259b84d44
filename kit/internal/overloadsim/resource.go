package overloadsim

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// Resource is a pool of slots: a call waits for a free slot (or for its
// context to end) and holds it for Hold, so the pool serves at most
// slots/Hold calls per second.
type Resource struct {
	slots chan struct{}
	hold  atomic.Int64 // nanoseconds a call holds its slot
	calls atomic.Int64 // calls served
}

// NewResource returns a pool of slots, each call holding one for hold.
func NewResource(slots int, hold time.Duration) *Resource {
	r := &Resource{slots: make(chan struct{}, slots)}
	r.hold.Store(int64(hold))
	return r
}

// SetHold changes how long each call holds its slot: twice as long halves
// the capacity.
func (r *Resource) SetHold(d time.Duration) { r.hold.Store(int64(d)) }

// MeasureCapacity returns the calls per second a fresh pool of slots ×
// hold serves on this machine when it never waits for work: a little less
// than slots/hold, for a sleep lasts a little longer than asked.
func MeasureCapacity(slots int, hold, d time.Duration) float64 {
	r := NewResource(slots, hold)
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for range 2 * slots {
		wg.Go(func() {
			for time.Now().Before(stop) {
				r.Use(context.Background())
			}
		})
	}
	wg.Wait()
	return float64(r.Served()) / time.Since(start).Seconds()
}

// Served returns the calls the pool served.
func (r *Resource) Served() int64 { return r.calls.Load() }

// Use waits for a slot and holds it. Once it has the slot the call runs to
// its end, as a query sent to a database would.
func (r *Resource) Use(ctx context.Context) error {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	time.Sleep(time.Duration(r.hold.Load()))
	<-r.slots
	r.calls.Add(1)
	return nil
}

// Varied is a resource without a capacity limit whose calls take fast, or
// slow one time in every: a server with a fast method and a slow one.
type Varied struct {
	Fast, Slow time.Duration
	Every      int64
	n          atomic.Int64
}

// Use holds the caller for the call's time.
func (v *Varied) Use(context.Context) error {
	d := v.Fast
	if v.n.Add(1)%v.Every == 0 {
		d = v.Slow
	}
	time.Sleep(d)
	return nil
}

// user is what a service calls for each request.
type user interface{ Use(context.Context) error }

// service answers Echo through a Resource.
type service struct {
	testpbv1.UnimplementedTestServiceServer
	res  user
	name string
}

func (s *service) Echo(ctx context.Context, req *testpbv1.EchoRequest) (*testpbv1.EchoResponse, error) {
	if err := s.res.Use(ctx); err != nil {
		return nil, err
	}
	return &testpbv1.EchoResponse{Message: req.GetMessage(), Server: s.name}, nil
}
