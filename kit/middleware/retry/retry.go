package retry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/grpckit/grpckit/kit/internal/cowmap"
	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

const meterName = "github.com/grpckit/grpckit/kit/middleware/retry"

// maxMethodInfos bounds the per-method cache; methods beyond it are looked
// up on every call.
const maxMethodInfos = 1000

// Retrier retries failed client calls as its [Config] says (see the package
// comment for when). It is safe for concurrent use and may serve several
// connections; retry budgets are kept per target ([grpc.ClientConn.Target]).
// [Retrier.SetConfig] takes effect for calls that start afterwards.
type Retrier struct {
	cfg    atomic.Pointer[compiled]
	logger *slog.Logger
	now    func() time.Time // time.Now; tests replace it before use

	attempts       metric.Int64Counter
	retries        metric.Int64Counter
	budgetRefusals metric.Int64Counter
	hedges         metric.Int64Counter
	hedgesWon      metric.Int64Counter

	budgets cowmap.Map[*budget]     // by target
	methods cowmap.Map[*methodInfo] // by full method name
}

// methodInfo is what the Retrier knows about a method independently of its
// config.
type methodInfo struct {
	idempotent bool               // idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT
	opts       []metric.AddOption // attributes of the method's attempts and retries
	lat        atomic.Pointer[latencies]
}

// latencies returns the method's latency distribution, made on first use
// (by hedged methods only).
func (mi *methodInfo) latencies() *latencies {
	if l := mi.lat.Load(); l != nil {
		return l
	}
	mi.lat.CompareAndSwap(nil, new(latencies))
	return mi.lat.Load()
}

// New returns a Retrier for cfg, or an error when cfg is invalid (see
// [Config.Validate]).
func New(cfg Config, opts ...Option) (*Retrier, error) {
	cc, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	r := &Retrier{logger: o.logger, now: time.Now}
	meter := o.meterProvider.Meter(meterName)
	if r.attempts, err = meter.Int64Counter("grpckit.retry.attempts",
		metric.WithDescription("Attempts of client calls, first attempts included, by method."),
		metric.WithUnit("{attempt}")); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if r.retries, err = meter.Int64Counter("grpckit.retry.retries",
		metric.WithDescription("Attempts of client calls after the first, by method."),
		metric.WithUnit("{attempt}")); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if r.budgetRefusals, err = meter.Int64Counter("grpckit.retry.budget_refusals",
		metric.WithDescription("Retries not made because the target's retry budget was spent, by target."),
		metric.WithUnit("{attempt}")); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if r.hedges, err = meter.Int64Counter("grpckit.retry.hedges",
		metric.WithDescription("Hedges sent: attempts of client calls started while an earlier attempt was still out, by method."),
		metric.WithUnit("{attempt}")); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if r.hedgesWon, err = meter.Int64Counter("grpckit.retry.hedges_won",
		metric.WithDescription("Hedged calls whose answer came from a hedge rather than the first attempt, by method."),
		metric.WithUnit("{call}")); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	r.cfg.Store(cc)
	return r, nil
}

// Config returns the configuration in force.
func (r *Retrier) Config() Config { return r.cfg.Load().cfg.clone() }

// SetConfig validates cfg and, when it is valid, makes it the configuration
// of calls that start from now on; budgets keep their tokens. An invalid cfg
// is rejected with an error and the current configuration stays. Safe to
// call concurrently with calls.
func (r *Retrier) SetConfig(cfg Config) error {
	cc, err := compile(cfg)
	if err != nil {
		return err
	}
	r.cfg.Store(cc)
	r.logger.LogAttrs(context.Background(), slog.LevelInfo, "retry: config changed",
		slog.Int("max_attempts", cfg.MaxAttempts), slog.Any("codes", cfg.Codes),
		slog.Float64("budget_ratio", cfg.BudgetRatio))
	return nil
}

// budgetFor returns the budget of target.
func (r *Retrier) budgetFor(target string) *budget {
	if b, ok := r.budgets.Load(target); ok {
		return b
	}
	return r.budgets.LoadOrStore(target, newBudget(target, r.now()))
}

// method returns what is known of method, looking it up once.
func (r *Retrier) method(method string) *methodInfo {
	if mi, ok := r.methods.Load(method); ok {
		return mi
	}
	mi := &methodInfo{
		idempotent: idempotent(method),
		opts:       []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("rpc.method", method)))},
	}
	if r.methods.Len() < maxMethodInfos {
		mi = r.methods.LoadOrStore(method, mi)
	}
	return mi
}

// idempotent reports whether the descriptor of method (a full gRPC method
// name) in [protoregistry.GlobalFiles] has idempotency_level NO_SIDE_EFFECTS
// or IDEMPOTENT.
func idempotent(method string) bool {
	name := strings.TrimPrefix(method, "/")
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return false
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name[:i] + "." + name[i+1:]))
	if err != nil {
		return false
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return false
	}
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	if !ok {
		return false
	}
	switch opts.GetIdempotencyLevel() {
	case descriptorpb.MethodOptions_NO_SIDE_EFFECTS, descriptorpb.MethodOptions_IDEMPOTENT:
		return true
	}
	return false
}

// call is the state of one client call shared by its attempts.
type call struct {
	r       *Retrier
	cfg     *compiled
	ctx     context.Context // the caller's context, with the no-retry mark propagated
	method  string
	info    *methodInfo
	budget  *budget
	noRetry bool // the caller's context forbids retries
}

// start begins a call: it credits the target's budget and propagates a
// no-retry mark of ctx to the server.
func (r *Retrier) start(ctx context.Context, cc *grpc.ClientConn, method string) call {
	target := ""
	if cc != nil {
		target = cc.Target()
	}
	c := call{r: r, cfg: r.cfg.Load(), ctx: ctx, method: method, info: r.method(method), budget: r.budgetFor(target)}
	c.budget.deposit(&c.cfg.cfg, r.now)
	if !RetriesAllowed(ctx) {
		c.noRetry = true
		c.ctx = metadata.AppendToOutgoingContext(ctx, NoRetryKey, "1")
	}
	return c
}

// attemptContext returns the context of attempt n (1 for the first).
func (c *call) attemptContext(n int) context.Context {
	c.r.attempts.Add(c.ctx, 1, c.info.opts...)
	if n == 1 {
		return c.ctx
	}
	c.r.retries.Add(c.ctx, 1, c.info.opts...)
	return metadata.AppendToOutgoingContext(c.ctx, AttemptKey, c.cfg.attempts[n])
}

// retry decides whether attempt n (2 or more) follows a failure with err,
// waits the backoff when it does and reports whether to make the attempt.
// When it returns false, the call ends with the error it returns: err, or
// CANCELED or DEADLINE_EXCEEDED when the caller's context ended first.
func (c *call) retry(n int, err error) (bool, error) {
	cfg := c.cfg
	if n > cfg.cfg.MaxAttempts || c.noRetry || !cfg.retries(err) || middleware.IsLocalRejection(err) {
		return false, err
	}
	if ctxErr := c.ctx.Err(); ctxErr != nil {
		return false, status.FromContextError(ctxErr).Err()
	}
	if allowed, ok := cfg.methods.Lookup(c.method); ok {
		if !allowed {
			return false, err
		}
	} else if !c.info.idempotent && !dedupe.Protected(c.ctx) {
		return false, err
	}
	wait, ok := cfg.backoff(n-1, err)
	if !ok {
		return false, err
	}
	now := c.r.now()
	if dl, ok := c.ctx.Deadline(); ok && dl.Sub(now) <= wait {
		return false, err
	}
	if !c.budget.withdraw(&cfg.cfg, now) {
		c.r.budgetRefusals.Add(c.ctx, 1, c.budget.refusalOpts...)
		c.r.logger.LogAttrs(c.ctx, slog.LevelDebug, "retry: budget spent, not retrying",
			slog.String("method", c.method), slog.Int("attempt", n), slog.Any("error", err))
		return false, err
	}
	c.r.logger.LogAttrs(c.ctx, slog.LevelDebug, "retry: retrying",
		slog.String("method", c.method), slog.Int("attempt", n), slog.Duration("backoff", wait), slog.Any("error", err))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true, nil
	case <-c.ctx.Done():
		return false, status.FromContextError(c.ctx.Err()).Err()
	}
}

// UnaryClientInterceptor returns an interceptor that retries failed calls
// (see the package comment for when). Install it inside the timeout
// interceptor and the dedupe client interceptor, outside the breaker.
func (r *Retrier) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		c := r.start(ctx, cc, method)
		var start time.Time
		if c.hedged() {
			if msg, ok := reply.(proto.Message); ok {
				if delay, ok := c.hedgeDelay(); ok {
					return c.hedge(delay, method, req, msg, cc, invoker, opts)
				}
				if c.learns() {
					start = r.now()
				}
			}
		}
		err := invoker(c.attemptContext(1), method, req, reply, cc, opts...)
		if !start.IsZero() && answered(err) {
			c.observeFirst(start)
		}
		for n := 2; err != nil; n++ {
			ok, rerr := c.retry(n, err)
			if !ok {
				return rerr
			}
			err = invoker(c.attemptContext(n), method, req, reply, cc, opts...)
		}
		return nil
	}
}
