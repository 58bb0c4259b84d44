package overload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
)

// ClientConfig configures a client's overload layer ([Client]): one
// [Throttle] per target. The zero value is not valid; start from
// [DefaultClientConfig].
type ClientConfig struct {
	// Enabled turns the throttle on. Default true.
	Enabled        bool `yaml:"enabled" json:"enabled"`
	ThrottleConfig `yaml:",inline"`
}

// DefaultClientConfig returns the documented defaults of every
// [ClientConfig] field: throttling on.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{Enabled: true, ThrottleConfig: DefaultThrottleConfig()}
}

// Validate reports the first invalid field of c, named as in YAML. The
// throttle's fields are checked even when it is off.
func (c ClientConfig) Validate() error { return wrap("", c.validate()) }

func (c ClientConfig) validate() error { return c.ThrottleConfig.validate() }

// ErrThrottled is matched (with errors.Is) by the errors a [Client] refuses
// calls with. Those errors are gRPC status errors with
// codes.ResourceExhausted, and local rejections
// (middleware.IsLocalRejection): the retry layer does not retry them and
// the circuit breaker does not count them.
var ErrThrottled = errors.New("overload: call throttled locally: the target accepts fewer calls than it is asked for")

// Client is the client side of the overload layer: Google SRE's adaptive
// throttling, with a [Throttle] per target (the ClientConn's target). It
// sheds calls locally, with a probability, when the target accepts fewer
// than 1/K of the calls it gets (half, by default), so that a busy target
// sees a part of the excess only (see the package comment) and every
// caller keeps its share of the target.
//
// A call is accepted unless the target refused it (RESOURCE_EXHAUSTED) or
// did not answer in time (DEADLINE_EXCEEDED): the signs of a busy target.
// UNAVAILABLE counts as accepted: a target that is down is the circuit
// breaker's and the balancer's business, and throttling would only turn
// its errors into local refusals. A call the caller canceled, or a later
// layer refused locally, counts as accepted too. A stream counts once, by
// its final status.
//
// All methods are safe for concurrent use.
type Client struct {
	logger  *slog.Logger
	refused metric.Int64Counter

	mu        sync.Mutex // guards throttles, and serializes SetConfig
	cfg       atomic.Pointer[ClientConfig]
	throttles map[string]*Throttle           // by target
	last      atomic.Pointer[targetThrottle] // the last one used: a client mostly has one target
}

type targetThrottle struct {
	target string
	t      *Throttle
}

// NewClient returns a Client for cfg, or the error of cfg.Validate.
func NewClient(cfg ClientConfig, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions(opts)
	refused, err := newRefusedCounter(o.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("overload: creating counter: %w", err)
	}
	c := &Client{logger: o.logger, refused: refused, throttles: make(map[string]*Throttle)}
	c.cfg.Store(&cfg)
	return c, nil
}

// Config returns the configuration in force.
func (c *Client) Config() ClientConfig { return *c.cfg.Load() }

// SetConfig validates cfg as a whole and applies it to every target at
// once, or returns the error and keeps the configuration in force.
func (c *Client) SetConfig(cfg ClientConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	for _, t := range c.throttles {
		t.SetConfig(cfg.ThrottleConfig) // valid: checked above
	}
	c.cfg.Store(&cfg)
	c.mu.Unlock()
	c.logger.LogAttrs(context.Background(), slog.LevelInfo, "overload: client throttle changed",
		slog.Bool("enabled", cfg.Enabled), slog.Float64("k", cfg.K))
	return nil
}

// ThrottleStats is what the throttle of one target is doing now.
type ThrottleStats struct {
	Target      string  `json:"target"`
	Requests    int64   `json:"requests"` // asked for, in the window
	Ended       int64   `json:"ended"`    // sent and ended, in the window
	Accepts     int64   `json:"accepts"`  // accepted by the target, in the window
	Probability float64 `json:"probability"`
}

// Stats returns the throttle of every target the client called.
func (c *Client) Stats() []ThrottleStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ThrottleStats, 0, len(c.throttles))
	for target, t := range c.throttles {
		req, ended, acc := t.Counts()
		out = append(out, ThrottleStats{Target: target, Requests: req, Ended: ended, Accepts: acc, Probability: t.Probability()})
	}
	slices.SortFunc(out, func(a, b ThrottleStats) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// throttle returns the throttle of target, made at first use.
func (c *Client) throttle(target string) *Throttle {
	if last := c.last.Load(); last != nil && last.target == target {
		return last.t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.throttles[target]
	if t == nil {
		t, _ = NewThrottle(c.cfg.Load().ThrottleConfig) // valid: checked by SetConfig
		c.throttles[target] = t
	}
	c.last.Store(&targetThrottle{target, t})
	return t
}

// allow returns the throttle a call of method to target goes through, or
// the local refusal of the call. A nil throttle means throttling is off.
func (c *Client) allow(ctx context.Context, target, method string) (*Throttle, error) {
	if !c.cfg.Load().Enabled {
		return nil, nil
	}
	t := c.throttle(target)
	if t.Allow() {
		return t, nil
	}
	c.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("side", "client"), attribute.String("method", method)))
	return nil, throttled
}

// throttled is the error of every local refusal.
var throttled error = &throttleError{st: status.New(codes.ResourceExhausted, ErrThrottled.Error())}

type throttleError struct{ st *status.Status }

func (e *throttleError) Error() string              { return e.st.String() }
func (e *throttleError) GRPCStatus() *status.Status { return e.st }
func (e *throttleError) Is(target error) bool       { return target == ErrThrottled }

// LocalRejection reports that the call was refused before it was sent.
func (e *throttleError) LocalRejection() bool { return true }

// accepted reports whether a call that ended with err was accepted by the
// target (see [Client]).
func accepted(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || middleware.IsLocalRejection(err) {
		return true
	}
	switch status.Code(err) {
	case codes.ResourceExhausted, codes.DeadlineExceeded:
		return false
	}
	return true
}

// UnaryClientInterceptor returns an interceptor that throttles calls by
// their target's accept ratio.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		t, err := c.allow(ctx, cc.Target(), method)
		if err != nil {
			return err
		}
		err = invoker(ctx, method, req, reply, cc, opts...)
		if t != nil {
			t.Record(accepted(err))
		}
		return err
	}
}

// StreamClientInterceptor returns an interceptor that throttles streams by
// their target's accept ratio; a stream's outcome is its final status,
// observed with grpc.OnFinish.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		t, err := c.allow(ctx, cc.Target(), method)
		if err != nil {
			return nil, err
		}
		if t == nil {
			return streamer(ctx, desc, cc, method, opts...)
		}
		var once sync.Once
		record := func(err error) { once.Do(func() { t.Record(accepted(err)) }) }
		// Full slice expression: never write into the caller's array.
		opts = append(opts[:len(opts):len(opts)], grpc.OnFinish(record))
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			record(err) // OnFinish is not called when a later interceptor failed first
			return nil, err
		}
		return cs, nil
	}
}
