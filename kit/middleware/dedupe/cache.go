package dedupe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpckit/grpckit/kit/middleware"
)

const meterName = "github.com/grpckit/grpckit/kit/middleware/dedupe"

// Cache is the server side of deduplication: it remembers the results of
// completed calls by request id and replays them (see the package comment).
// It is safe for concurrent use; [Cache.SetConfig] takes effect for calls
// that start afterwards, except that a smaller MaxEntries evicts at once.
type Cache struct {
	cfg    atomic.Pointer[compiled]
	logger *slog.Logger
	now    func() time.Time // time.Now; tests replace it before use

	replays        metric.Int64Counter
	waits          metric.Int64Counter
	refusals       metric.Int64Counter
	evictions      metric.Int64Counter
	capacityEvicts []metric.AddOption
	callerEvicts   []metric.AddOption
	expiredEvicts  []metric.AddOption

	mu      sync.Mutex
	entries map[string]*entry     // guarded by mu; running and completed calls
	lru     entry                 // guarded by mu; sentinel of the list of completed calls, most recently used first
	size    int                   // guarded by mu; completed calls in lru
	callers map[string]*callerLRU // guarded by mu; the completed calls of each caller that has some
}

// callerLRU is the list of one caller's completed calls, most recently used
// first (linked through entry.cprev and entry.cnext).
type callerLRU struct {
	head entry // sentinel
	n    int
}

// entry is one call, running or completed.
type entry struct {
	key    string
	caller string
	hash   [sha256.Size]byte // of the request; read-only
	done   chan struct{}     // closed when the call has ended

	// Written before done is closed and before completed is set; read-only
	// afterwards.
	resp   any
	err    error
	cached bool // the result is remembered; false: duplicates run the call themselves

	// Guarded by Cache.mu.
	completed    bool
	expires      time.Time
	prev, next   *entry // in Cache.lru
	cprev, cnext *entry // in the caller's callerLRU
}

// New returns a Cache for cfg, or an error when cfg is invalid (see
// [Config.Validate]).
func New(cfg Config, opts ...Option) (*Cache, error) {
	cc, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	c := &Cache{logger: o.logger, now: time.Now, entries: make(map[string]*entry), callers: make(map[string]*callerLRU)}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	meter := o.meterProvider.Meter(meterName)
	if c.replays, err = meter.Int64Counter("grpckit.dedupe.replays",
		metric.WithDescription("Duplicate calls answered with the remembered result of an earlier call."),
		metric.WithUnit("{call}")); err != nil {
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	if c.waits, err = meter.Int64Counter("grpckit.dedupe.waits",
		metric.WithDescription("Duplicate calls that waited for the same call still running."),
		metric.WithUnit("{call}")); err != nil {
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	if c.refusals, err = meter.Int64Counter("grpckit.dedupe.refusals",
		metric.WithDescription("Calls refused because their request id was used for a different request."),
		metric.WithUnit("{call}")); err != nil {
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	if c.evictions, err = meter.Int64Counter("grpckit.dedupe.evictions",
		metric.WithDescription("Remembered results dropped, by reason (capacity, caller: the caller's own share is full, expired)."),
		metric.WithUnit("{entry}")); err != nil {
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	c.capacityEvicts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "capacity")))}
	c.callerEvicts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "caller")))}
	c.expiredEvicts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "expired")))}
	c.cfg.Store(cc)
	return c, nil
}

// Config returns the configuration in force.
func (c *Cache) Config() Config {
	cfg := c.cfg.Load().cfg
	cfg.Methods = slices.Clone(cfg.Methods)
	return cfg
}

// SetConfig validates cfg and, when it is valid, makes it the configuration
// of calls that start from now on; remembered results keep their expiry time
// and a smaller MaxEntries or MaxEntriesPerCaller evicts the least recently
// used at once. An invalid cfg is rejected with an error and the current
// configuration stays. Safe to call concurrently with calls.
func (c *Cache) SetConfig(cfg Config) error {
	cc, err := compile(cfg)
	if err != nil {
		return err
	}
	c.cfg.Store(cc)
	var ev evicted
	c.mu.Lock()
	for _, l := range c.callers {
		for l.n > cc.perCaller {
			c.removeLocked(l.head.cprev)
			ev.caller++
		}
	}
	ev.add(c.evictLocked(cc.cfg.MaxEntries, c.now()))
	c.mu.Unlock()
	c.countEvictions(context.Background(), ev)
	c.logger.LogAttrs(context.Background(), slog.LevelInfo, "dedupe: config changed",
		slog.Duration("ttl", time.Duration(cfg.TTL)), slog.Int("max_entries", cfg.MaxEntries),
		slog.Int("max_entries_per_caller", cc.perCaller), slog.Any("methods", cfg.Methods))
	return nil
}

// StreamServerInterceptor returns nil: streams are not deduplicated.
func (c *Cache) StreamServerInterceptor() grpc.StreamServerInterceptor { return nil }

// Len returns the number of remembered results.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// UnaryServerInterceptor returns an interceptor that deduplicates the calls
// of [Config.Methods] that carry a request id (metadata [RequestIDKey]);
// other calls pass through. Every unary call with a valid request id, of any
// method, gets its [Request] in the handler's context ([FromContext]). A
// call of [Config.Methods] whose request id is longer than 128 bytes or not
// printable ASCII fails with INVALID_ARGUMENT, and so does a call whose
// request id is remembered for a different request ([ErrRequestIDReused]).
// Install it inside the auth layer, so that the caller identity is known.
func (c *Cache) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ids := metadata.ValueFromIncomingContext(ctx, RequestIDKey)
		if len(ids) == 0 {
			return handler(ctx, req)
		}
		_, listed := c.cfg.Load().methods.Lookup(info.FullMethod)
		id := ids[0]
		if !ValidRequestID(id) {
			if !listed {
				return handler(ctx, req)
			}
			return nil, status.Errorf(codes.InvalidArgument, "dedupe: metadata %s must be 1 to %d bytes of printable ASCII", RequestIDKey, maxIDLen)
		}
		r := Request{Caller: middleware.CallerKey(ctx), Method: info.FullMethod, ID: id, Hash: HashRequest(req)}
		ctx = NewContext(ctx, r)
		if !listed {
			return handler(ctx, req)
		}
		return c.do(ctx, r, req, handler)
	}
}

// key returns the cache key of r. Neither a method name nor a request id
// contains NUL, so the key is unambiguous whatever the caller identity holds.
func (r Request) key() string { return r.Method + "\x00" + r.ID + "\x00" + r.Caller }

// do runs handler for the call r unless it has run or is running.
func (c *Cache) do(ctx context.Context, r Request, req any, handler grpc.UnaryHandler) (any, error) {
	key := r.key()
	for {
		c.mu.Lock()
		e := c.entries[key]
		var ev evicted
		if e != nil && e.completed && !c.now().Before(e.expires) {
			c.removeLocked(e)
			e, ev.expired = nil, 1
		}
		if e == nil {
			e = &entry{key: key, caller: r.Caller, hash: r.Hash, done: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			c.countEvictions(ctx, ev)
			return c.lead(ctx, e, req, handler)
		}
		if !sameRequest(e.hash, r.Hash) {
			c.mu.Unlock()
			c.refusals.Add(ctx, 1)
			c.logger.LogAttrs(ctx, slog.LevelDebug, "dedupe: refused a request id reused for a different request",
				slog.String("key", key))
			return nil, status.Error(codes.InvalidArgument, ErrRequestIDReused.Error())
		}
		if e.completed {
			c.moveToFrontLocked(e)
			c.mu.Unlock()
			c.replays.Add(ctx, 1)
			c.logger.LogAttrs(ctx, slog.LevelDebug, "dedupe: replayed a completed call",
				slog.String("key", key), slog.Any("error", e.err))
			return e.result()
		}
		c.mu.Unlock()
		c.waits.Add(ctx, 1)
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		if e.cached {
			c.logger.LogAttrs(ctx, slog.LevelDebug, "dedupe: a duplicate got the result of the call it waited for",
				slog.String("key", key), slog.Any("error", e.err))
			return e.result()
		}
		// The first call ended without a result worth remembering: run the
		// call (or wait for whoever got there first).
	}
}

// lead runs the handler for e and publishes its result.
func (c *Cache) lead(ctx context.Context, e *entry, req any, handler grpc.UnaryHandler) (any, error) {
	ended := false
	defer func() {
		if !ended { // the handler panicked: forget the call, let the panic go on
			c.finish(ctx, e, false)
		}
	}()
	resp, err := handler(ctx, req)
	ended = true
	keep := remember(ctx, err)
	if keep {
		if err == nil {
			e.resp = cloneMessage(resp)
		}
		e.err = err
	}
	c.finish(ctx, e, keep)
	return resp, err
}

// finish records that e's call ended, remembered or not, and wakes up the
// duplicates waiting for it.
func (c *Cache) finish(ctx context.Context, e *entry, keep bool) {
	var ev evicted
	c.mu.Lock()
	if keep {
		e.cached = true
		e.completed = true
		cc, now := c.cfg.Load(), c.now()
		e.expires = now.Add(time.Duration(cc.cfg.TTL))
		l := c.pushFrontLocked(e)
		ev = c.evictLocked(cc.cfg.MaxEntries, now)
		for l.n > cc.perCaller {
			c.removeLocked(l.head.cprev)
			ev.caller++
		}
	} else if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	c.mu.Unlock()
	close(e.done)
	c.countEvictions(ctx, ev)
}

// evicted counts the results dropped, by reason.
type evicted struct{ capacity, caller, expired int }

func (ev *evicted) add(o evicted) {
	ev.capacity += o.capacity
	ev.caller += o.caller
	ev.expired += o.expired
}

// evictLocked drops expired results from the least recently used end and
// then results beyond limit.
func (c *Cache) evictLocked(limit int, now time.Time) evicted {
	var ev evicted
	for last := c.lru.prev; last != &c.lru && !now.Before(last.expires); last = c.lru.prev {
		c.removeLocked(last)
		ev.expired++
	}
	for c.size > limit {
		c.removeLocked(c.lru.prev)
		ev.capacity++
	}
	return ev
}

func (c *Cache) countEvictions(ctx context.Context, ev evicted) {
	if ev.capacity > 0 {
		c.evictions.Add(ctx, int64(ev.capacity), c.capacityEvicts...)
	}
	if ev.caller > 0 {
		c.evictions.Add(ctx, int64(ev.caller), c.callerEvicts...)
	}
	if ev.expired > 0 {
		c.evictions.Add(ctx, int64(ev.expired), c.expiredEvicts...)
	}
}

// pushFrontLocked adds the completed call e to the lists and returns its
// caller's.
func (c *Cache) pushFrontLocked(e *entry) *callerLRU {
	e.prev, e.next = &c.lru, c.lru.next
	e.prev.next, e.next.prev = e, e
	c.size++
	l := c.callers[e.caller]
	if l == nil {
		l = &callerLRU{}
		l.head.cprev, l.head.cnext = &l.head, &l.head
		c.callers[e.caller] = l
	}
	e.cprev, e.cnext = &l.head, l.head.cnext
	e.cprev.cnext, e.cnext.cprev = e, e
	l.n++
	return l
}

func (c *Cache) moveToFrontLocked(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &c.lru, c.lru.next
	e.prev.next, e.next.prev = e, e
	l := c.callers[e.caller]
	e.cprev.cnext, e.cnext.cprev = e.cnext, e.cprev
	e.cprev, e.cnext = &l.head, l.head.cnext
	e.cprev.cnext, e.cnext.cprev = e, e
}

// removeLocked forgets the completed call e.
func (c *Cache) removeLocked(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	c.size--
	e.cprev.cnext, e.cnext.cprev = e.cnext, e.cprev
	e.cprev, e.cnext = nil, nil
	l := c.callers[e.caller]
	l.n--
	if l.n == 0 {
		delete(c.callers, e.caller)
	}
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

// result returns a copy of the remembered response, or the remembered error.
func (e *entry) result() (any, error) {
	if e.err != nil {
		return nil, e.err
	}
	return cloneMessage(e.resp), nil
}

// remember reports whether a call that ended with err (in ctx) is done for
// good, so that a duplicate may get its result instead of running again.
// Errors that say the call may not have done its work are not remembered
// (see the package comment): the transient codes, and INTERNAL, UNKNOWN
// (also any error that is not a status) and DATA_LOSS, which say the server
// failed in a way it did not expect — a retry must run the call again
// rather than get the failure replayed for the whole TTL.
func remember(ctx context.Context, err error) bool {
	if err == nil {
		return true
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted, codes.Aborted,
		codes.Internal, codes.Unknown, codes.DataLoss:
		return false
	}
	return true
}

// cloneMessage returns a deep copy of a proto message, and anything else as
// it is.
func cloneMessage(v any) any {
	if m, ok := v.(proto.Message); ok {
		return proto.Clone(m)
	}
	return v
}
