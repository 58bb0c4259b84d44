package breaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/statuscode"
)

const scope = "github.com/grpckit/grpckit/kit/middleware/breaker"

// Breakers holds one circuit breaker per (target, method) and makes the
// client interceptors that consult them. Breakers are created lazily on the
// first call of a method on a target and kept for the life of the Breakers.
// All methods are safe for concurrent use.
type Breakers struct {
	logger      *slog.Logger
	transitions metric.Int64Counter
	now         func() time.Time // time source; tests replace it before any call
	epoch       time.Time        // origin of the nanoseconds liveness stores

	mu       sync.RWMutex
	cfg      Config           // guarded by mu
	breakers map[key]*breaker // guarded by mu
}

type key struct{ target, method string }

// breaker is one gobreaker breaker with the errors it fails calls with,
// built once so that failing fast allocates nothing.
type breaker struct {
	cb         *gobreaker.TwoStepCircuitBreaker[struct{}]
	errOpen    error
	errProbing error
	deadline   statuscode.DeadlineRule
	live       *liveness // kept when SetConfig rebuilds the breaker
}

// liveness records when the target last answered a call of one (target,
// method): the sign of life that turns a DEADLINE_EXCEEDED into "busy"
// under [statuscode.DeadlineWhenSilent].
type liveness struct {
	// last is the time of the latest answer, in nanoseconds since
	// Breakers.epoch (monotonic), or never. To spare the cache line shared
	// by every call of the method, it is written at most once per
	// answerGrain: the latest answer is always before last+answerGrain.
	last atomic.Int64
}

const (
	answerGrain = int64(time.Millisecond)
	never       = math.MinInt64 / 2 // before any start, without overflow
)

func newLiveness() *liveness {
	l := &liveness{}
	l.last.Store(never)
	return l
}

// answered records an answer at now.
func (l *liveness) answered(now int64) {
	for {
		last := l.last.Load()
		if now-last < answerGrain {
			return
		}
		if l.last.CompareAndSwap(last, now) {
			return
		}
	}
}

// answeredSince reports whether an answer may have come at or after start.
// False is exact: no answer came since start. True may also mean an answer
// less than answerGrain before start.
func (l *liveness) answeredSince(start int64) bool { return l.last.Load()+answerGrain > start }

// nanos returns the time in nanoseconds since b.epoch.
func (b *Breakers) nanos() int64 { return int64(b.now().Sub(b.epoch)) }

// Errors that carry a call's verdict to gobreaker (isSuccessful,
// isExcluded); never returned to callers.
var (
	errFailed  = errors.New("breaker: failure")
	errNeutral = errors.New("breaker: neither success nor failure")
)

// verdict judges a call of br that started at start (b.nanos; unread, 0,
// unless br.deadline is when_silent) and ended with err: nil for a success,
// errFailed or errNeutral. An answer is recorded as a sign of life.
func (b *Breakers) verdict(br *breaker, start int64, err error) error {
	switch middleware.ClassifyOutcome(err) {
	case middleware.OutcomeAnswered:
		br.live.answered(b.nanos())
		return nil
	case middleware.OutcomeUnavailable:
		return errFailed
	case middleware.OutcomeDeadline:
		switch {
		case br.deadline == statuscode.DeadlineFailure:
			return errFailed
		case br.deadline == statuscode.DeadlineIgnore, br.live.answeredSince(start):
			return errNeutral // busy, not down
		}
		return errFailed
	default:
		return errNeutral
	}
}

// start returns the start time verdict needs for a call of br.
func (b *Breakers) start(br *breaker) int64 {
	if br.deadline != statuscode.DeadlineWhenSilent {
		return 0
	}
	return b.nanos()
}

// New returns Breakers configured by cfg, or the error of cfg.Validate.
func New(cfg Config, opts ...Option) (*Breakers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	transitions, err := o.meterProvider.Meter(scope).Int64Counter("grpckit.breaker.transitions",
		metric.WithDescription("Circuit breaker state transitions, by target, method and the states left (from) and entered (to)."),
		metric.WithUnit("{transition}"))
	if err != nil {
		return nil, fmt.Errorf("breaker: creating counter: %w", err)
	}
	return &Breakers{
		logger:      o.logger,
		transitions: transitions,
		now:         time.Now,
		epoch:       time.Now(),
		cfg:         cfg,
		breakers:    make(map[key]*breaker),
	}, nil
}

// Config returns the configuration in effect.
func (b *Breakers) Config() Config {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.cfg
}

// SetConfig validates cfg and puts it in effect: breakers created afterwards
// use it, and every existing breaker is replaced by a new, closed one built
// from it (its counts and state are lost; calls in flight report to the
// replaced breaker, which is discarded; the time of the target's last
// answer is kept). A cfg equal to the one in effect
// changes nothing. An invalid cfg is returned as an error and the previous
// configuration stays.
func (b *Breakers) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	if cfg == b.cfg {
		b.mu.Unlock()
		return nil
	}
	b.cfg = cfg
	for k, old := range b.breakers {
		b.breakers[k] = b.newBreakerLocked(k, old.live)
	}
	n := len(b.breakers)
	b.mu.Unlock()
	b.logger.LogAttrs(context.Background(), slog.LevelInfo, "breaker: configuration changed, breakers rebuilt",
		slog.Int("breakers", n))
	return nil
}

// State describes one breaker, for the admin page.
type State struct {
	// Target is the target of the ClientConn, as [grpc.ClientConn.Target]
	// returns it.
	Target string `json:"target"`
	// Method is the full method name, "/package.Service/Method".
	Method string `json:"method"`
	// State is "closed", "half-open" or "open".
	State string `json:"state"`
	Counts
}

// Counts are a breaker's counts in its current state (and, when closed,
// current Interval).
type Counts struct {
	Requests             uint32 `json:"requests"`
	TotalSuccesses       uint32 `json:"total_successes"`
	TotalFailures        uint32 `json:"total_failures"`
	TotalExclusions      uint32 `json:"total_exclusions"`
	ConsecutiveSuccesses uint32 `json:"consecutive_successes"`
	ConsecutiveFailures  uint32 `json:"consecutive_failures"`
}

// States returns the state of every breaker, sorted by target then method.
func (b *Breakers) States() []State {
	type entry struct {
		key
		br *breaker
	}
	b.mu.RLock()
	entries := make([]entry, 0, len(b.breakers))
	for k, br := range b.breakers {
		entries = append(entries, entry{k, br})
	}
	b.mu.RUnlock()

	states := make([]State, 0, len(entries))
	for _, e := range entries {
		st := e.br.cb.State() // first: it moves an expired open breaker to half-open
		c := e.br.cb.Counts()
		states = append(states, State{
			Target: e.target,
			Method: e.method,
			State:  st.String(),
			Counts: Counts{
				Requests:             c.Requests,
				TotalSuccesses:       c.TotalSuccesses,
				TotalFailures:        c.TotalFailures,
				TotalExclusions:      c.TotalExclusions,
				ConsecutiveSuccesses: c.ConsecutiveSuccesses,
				ConsecutiveFailures:  c.ConsecutiveFailures,
			},
		})
	}
	slices.SortFunc(states, func(x, y State) int {
		return cmp.Or(cmp.Compare(x.Target, y.Target), cmp.Compare(x.Method, y.Method))
	})
	return states
}

// get returns the breaker of (target, method), creating it on first use.
func (b *Breakers) get(target, method string) *breaker {
	k := key{target, method}
	b.mu.RLock()
	br := b.breakers[k]
	b.mu.RUnlock()
	if br != nil {
		return br
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if br = b.breakers[k]; br == nil {
		br = b.newBreakerLocked(k, newLiveness())
		b.breakers[k] = br
	}
	return br
}

// newBreakerLocked builds the breaker of k from b.cfg, with live as the
// record of the target's answers.
func (b *Breakers) newBreakerLocked(k key, live *liveness) *breaker {
	cfg := b.cfg
	return &breaker{
		cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        k.target + " " + k.method,
			MaxRequests: cfg.HalfOpenRequests,
			Interval:    time.Duration(cfg.Interval),
			Timeout:     time.Duration(cfg.OpenTimeout),
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return cfg.readyToTrip(c.TotalFailures, c.TotalSuccesses, c.ConsecutiveFailures)
			},
			OnStateChange: func(_ string, from, to gobreaker.State) { b.onStateChange(k, from, to) },
			IsSuccessful:  func(err error) bool { return err == nil },
			IsExcluded:    func(err error) bool { return err == errNeutral },
		}),
		deadline: cfg.DeadlineExceeded,
		live:     live,
		errOpen: rejection{status.Newf(codes.Unavailable,
			"breaker: circuit breaker is open for target %q method %s", k.target, k.method)},
		errProbing: rejection{status.Newf(codes.Unavailable,
			"breaker: circuit breaker is half-open and already probing target %q method %s", k.target, k.method)},
	}
}

// onStateChange counts and logs a transition. gobreaker calls it with the
// breaker's own lock held; it takes no lock of b.
func (b *Breakers) onStateChange(k key, from, to gobreaker.State) {
	b.transitions.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("target", k.target),
		attribute.String("method", k.method),
		attribute.String("from", from.String()),
		attribute.String("to", to.String()),
	))
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	b.logger.LogAttrs(context.Background(), level, "breaker: state changed",
		slog.String("target", k.target),
		slog.String("method", k.method),
		slog.String("from", from.String()),
		slog.String("to", to.String()))
}

// reject turns the error of a breaker that refused a call into the status
// error returned to the caller.
func (br *breaker) reject(err error) error {
	if errors.Is(err, gobreaker.ErrOpenState) {
		return br.errOpen
	}
	return br.errProbing
}

// rejection is the UNAVAILABLE error of a call the breaker refused. It is a
// local rejection (middleware.IsLocalRejection), so the retry layer does not
// retry it.
type rejection struct{ st *status.Status }

func (r rejection) Error() string              { return r.st.Err().Error() }
func (r rejection) GRPCStatus() *status.Status { return r.st }
func (r rejection) LocalRejection() bool       { return true }
