package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/writeload"
	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// callFunc makes one call as caller number caller.
type callFunc func(ctx context.Context, caller int) error

// load runs callers in a loop, each making one call at a time with its own
// deadline, at a bounded total rate.
type load struct {
	deadline time.Duration
	limiter  *rate.Limiter // nil: no bound
	stopped  atomic.Bool
	wg       sync.WaitGroup
	stopOnce sync.Once

	calls  atomic.Int64
	failed atomic.Int64

	start time.Time
	end   time.Time // set by stop

	mu       sync.Mutex
	kinds    map[string]int // failures by "CODE: message"; guarded by mu
	failedAt []time.Time    // when each failed call ended; guarded by mu
	slices   []slice        // calls ended per sliceLen since start, for the charts; guarded by mu
}

// slice counts the calls that ended in one sliceLen of a load.
type slice struct{ calls, failed int }

// sliceLen is the resolution of a load's calls over time.
const sliceLen = 250 * time.Millisecond

// startLoad starts callers goroutines calling call until stop. Calls that
// fail because ctx is done (Ctrl-C) are not counted.
func startLoad(ctx context.Context, callers int, perSecond float64, deadline time.Duration, call callFunc) *load {
	l := &load{deadline: deadline, start: time.Now(), kinds: map[string]int{}}
	if perSecond > 0 {
		l.limiter = rate.NewLimiter(rate.Limit(perSecond), callers)
	}
	for i := range callers {
		l.wg.Add(1)
		go l.caller(ctx, i, call)
	}
	return l
}

// startLoad starts the load of the scenarios: -callers callers at -rate.
func (e *env) startLoad(ctx context.Context, deadline time.Duration, call callFunc) *load {
	return startLoad(ctx, e.opts.callers, e.opts.rate, deadline, call)
}

func (l *load) caller(ctx context.Context, i int, call callFunc) {
	defer l.wg.Done()
	for !l.stopped.Load() && ctx.Err() == nil {
		if l.limiter != nil && l.limiter.Wait(ctx) != nil {
			return
		}
		if l.stopped.Load() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, l.deadline)
		err := call(cctx, i)
		cancel()
		if err != nil && ctx.Err() != nil {
			return
		}
		l.calls.Add(1)
		if err != nil {
			l.failed.Add(1)
			l.record(err)
		}
		l.count(err != nil)
	}
}

// count adds a call that ended now to its slice.
func (l *load) count(failed bool) {
	i := int(time.Since(l.start) / sliceLen)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.slices) <= i {
		l.slices = append(l.slices, slice{})
	}
	l.slices[i].calls++
	if failed {
		l.slices[i].failed++
	}
}

// timeline returns the calls and failed calls per sliceLen since start.
func (l *load) timeline() []slice {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.slices)
}

func (l *load) record(err error) {
	st := status.Convert(err)
	msg := st.Message()
	if len(msg) > 90 {
		msg = msg[:90] + "..."
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kinds[st.Code().String()+": "+msg]++
	l.failedAt = append(l.failedAt, time.Now())
}

// stop stops the callers and waits for their calls in flight (each bounded
// by its deadline). Safe to call more than once.
func (l *load) stop() {
	l.stopOnce.Do(func() {
		l.stopped.Store(true)
		l.wg.Wait()
		l.end = time.Now()
	})
}

// duration is how long the load ran (so far).
func (l *load) duration() time.Duration {
	if l.end.IsZero() {
		return time.Since(l.start)
	}
	return l.end.Sub(l.start)
}

// failures describes the failed calls by kind, most frequent first, for the
// progress output.
func (l *load) failures() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, n := range l.kinds {
		all = append(all, kv{k, n})
	}
	sort.Slice(all, func(a, b int) bool { return all[a].n > all[b].n })
	var b strings.Builder
	for i, e := range all {
		if i == 5 {
			fmt.Fprintf(&b, "\n      ... %d more kinds", len(all)-5)
			break
		}
		fmt.Fprintf(&b, "\n      %6d x %s", e.n, e.k)
	}
	return b.String()
}

// failureTimes returns when the failed calls ended.
func (l *load) failureTimes() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failedAt)
}

// settle keeps the load running until no call has failed for quiet (and
// at least quiet from now), polling its failures; after timeout it gives up
// and the failures stand as they are.
func (l *load) settle(ctx context.Context, quiet, timeout time.Duration) error {
	start := time.Now()
	_, err := poll(ctx, timeout, "calls succeeding again", func(context.Context) (bool, error) {
		ref := start
		if ts := l.failureTimes(); len(ts) > 0 && ts[len(ts)-1].After(ref) {
			ref = ts[len(ts)-1]
		}
		return time.Since(ref) >= quiet, nil
	})
	if err != nil && ctx.Err() == nil {
		progress("calls still failing: %v", err)
		return nil
	}
	return err
}

// attempt is one attempt of a call (retries are separate attempts), as the
// innermost client interceptor saw it.
type attempt struct {
	start, end time.Time
	addr       string // the endpoint it went to; "" when it got no connection
	code       codes.Code
	msg        string // the status message of a failed attempt
}

// observer records every attempt of the calls of the clients it is
// installed in.
type observer struct {
	mu       sync.Mutex
	attempts []attempt // guarded by mu
}

// unary is a client interceptor that must run innermost (after kit's chain,
// so inside retries): it records each attempt and the endpoint it reached.
func (o *observer) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var p peer.Peer
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Peer(&p))...)
	a := attempt{start: start, end: time.Now(), code: status.Code(err)}
	if err != nil {
		a.msg = status.Convert(err).Message()
	}
	if p.Addr != nil {
		a.addr = p.Addr.String()
	}
	o.mu.Lock()
	o.attempts = append(o.attempts, a)
	o.mu.Unlock()
	return err
}

// to returns the attempts that went to addr and started at or after since.
func (o *observer) to(addr string, since time.Time) []attempt {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []attempt
	for _, a := range o.attempts {
		if a.addr == addr && !a.start.Before(since) {
			out = append(out, a)
		}
	}
	return out
}

// since returns the attempts that started at or after t.
func (o *observer) since(t time.Time) []attempt {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []attempt
	for _, a := range o.attempts { // in the order they ended
		if !a.start.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// failedSince counts the attempts that failed and started at or after
// since: failures a retry may have hidden from the caller.
func (o *observer) failedSince(since time.Time) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, a := range o.attempts {
		if a.code != codes.OK && !a.start.Before(since) {
			n++
		}
	}
	return n
}

// firstFailed describes the first attempt that failed at or after since.
func (o *observer) firstFailed(since time.Time) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range o.attempts {
		if a.code != codes.OK && !a.start.Before(since) {
			msg := strings.ReplaceAll(a.msg, ", ", "; ")
			if len(msg) > 160 {
				msg = msg[:160] + "..."
			}
			return fmt.Sprintf("%s %q", a.code, msg)
		}
	}
	return "none"
}

// clients are kit clients of this process, discovering through Consul.
type clients struct {
	obs       *observer
	userCC    *grpc.ClientConn
	greeterCC *grpc.ClientConn
	users     userv1.UserServiceClient
	greeters  greeterv1.GreeterServiceClient
	ids       []string // existing user ids to ask for
}

// dial makes a user client (consul:///user) and a greeter client (target)
// with kit's default chains, changed by opts, and an observer innermost.
// Both present a bearer token signed with the services' secret.
func (e *env) dial(greeterTarget string, opts ...kit.ClientOption) (*clients, error) {
	c := &clients{obs: &observer{}, ids: e.userIDs}
	tok, err := writeload.Token()
	if err != nil {
		return nil, err
	}
	all := append([]kit.ClientOption{
		kit.WithPerRPCCredentials(auth.BearerToken(tok, auth.AllowInsecure())),
		kit.WithDiscovery(e.reg),
		kit.WithLogger(e.log),
		kit.WithBalancerMonitor(&e.balancers),
		kit.WithDialOptions(grpc.WithChainUnaryInterceptor(c.obs.unary)),
	}, opts...)
	if c.userCC, err = kit.NewClient(userTarget, all...); err != nil {
		return nil, err
	}
	if c.greeterCC, err = kit.NewClient(greeterTarget, all...); err != nil {
		c.userCC.Close()
		return nil, err
	}
	c.users = userv1.NewUserServiceClient(c.userCC)
	c.greeters = greeterv1.NewGreeterServiceClient(c.greeterCC)
	return c, nil
}

func (c *clients) close() {
	c.userCC.Close()
	c.greeterCC.Close()
}

// getUser asks user for one of the seeded users.
func (c *clients) getUser(ctx context.Context, caller int) error {
	id := c.ids[caller%len(c.ids)]
	resp, err := c.users.GetUser(ctx, &userv1.GetUserRequest{Id: id})
	if err == nil && resp.GetUser().GetId() != id {
		return fmt.Errorf("GetUser(%s) answered user %q", id, resp.GetUser().GetId())
	}
	return err
}

// sayHello asks a greeter to greet one of the seeded users, which makes the
// greeter call user.GetUser: two hops.
func (c *clients) sayHello(ctx context.Context, caller int) error {
	id := c.ids[caller%len(c.ids)]
	resp, err := c.greeters.SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id})
	if err == nil && !strings.HasPrefix(resp.GetMessage(), "Hello, ") {
		return errors.New("SayHello answered " + resp.GetMessage())
	}
	return err
}

// mixed makes even callers call user directly and odd ones through a greeter.
func (c *clients) mixed(ctx context.Context, caller int) error {
	if caller%2 == 0 {
		return c.getUser(ctx, caller)
	}
	return c.sayHello(ctx, caller)
}
