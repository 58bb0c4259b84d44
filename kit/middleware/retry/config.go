package retry

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/grpckit/grpckit/kit/duration"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// maxMaxAttempts bounds [Config.MaxAttempts].
const maxMaxAttempts = 10

// Config is the retry section of a service's configuration (client side).
// Start from [DefaultConfig] for the defaults.
type Config struct {
	// MaxAttempts is the most attempts a call gets, the first included; 1
	// turns retries off. 1 to 10. Default: 3.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// Codes are the status codes that are retried, by their canonical names
	// ("UNAVAILABLE", "RESOURCE_EXHAUSTED"; case does not matter). "OK" is
	// not allowed. Default: ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]: a
	// server's refusal for overload or a rate limit is retried after the
	// wait its RetryInfo asks for (never past the deadline, and only while
	// the budget allows), so that it may land on an instance with room.
	// RESOURCE_EXHAUSTED without a RetryInfo (grpc-go's own, for a message
	// over the size limit) and a client-side layer's refusal are never
	// retried.
	Codes []string `yaml:"codes" json:"codes"`
	// InitialBackoff is the wait before the first retry; each further retry
	// waits Multiplier times longer, up to MaxBackoff. Must be positive.
	// Default: 50ms.
	InitialBackoff duration.Duration `yaml:"initial_backoff" json:"initial_backoff"`
	// MaxBackoff caps the wait between attempts; a server that asks (with
	// google.rpc.RetryInfo) for a longer wait than this is not retried. At
	// least InitialBackoff. Default: 1s.
	MaxBackoff duration.Duration `yaml:"max_backoff" json:"max_backoff"`
	// Multiplier is the growth of the wait per retry, at least 1. Default: 2.
	Multiplier float64 `yaml:"multiplier" json:"multiplier"`
	// Jitter spreads each wait at random by up to this fraction either way,
	// 0 to 1 (excluded). Default: 0.2 (±20%).
	Jitter float64 `yaml:"jitter" json:"jitter"`
	// BudgetRatio is the share of the calls to a target that retries may
	// add: each call earns the target's budget BudgetRatio tokens, each
	// retry spends one. Earned tokens fade with a 10-second time constant,
	// so the budget follows the recent call rate. At least 0. Default: 0.1.
	BudgetRatio float64 `yaml:"budget_ratio" json:"budget_ratio"`
	// BudgetMinRetriesPerSecond is the retry allowance of a target on top of
	// BudgetRatio, for when traffic is low; up to one second of it (at
	// least one retry, unless it is 0) can be saved up. At least 0.
	// Default: 10.
	BudgetMinRetriesPerSecond float64 `yaml:"budget_min_retries_per_second" json:"budget_min_retries_per_second"`
	// Methods forces full method names ("/user.v1.UserService/CreateUser")
	// or whole services ("/user.v1.UserService/*") to be retried (true) or
	// not (false), whatever their idempotency_level; an exact name wins over
	// its service, and false wins over dedupe protection. Default: none.
	Methods map[string]bool `yaml:"methods" json:"methods"`
	// Hedging sends further attempts of a slow call before the first has
	// answered; off unless it names methods.
	Hedging HedgingConfig `yaml:"hedging" json:"hedging"`
}

// HedgingConfig is the hedging part of [Config]: a call to a hedged method
// that has not answered after Delay gets a second attempt, then a third
// after another Delay, up to MaxAttempts in all; the first answer wins
// and the other attempts are cancelled (as gRFC A6 describes, which
// grpc-go does not implement). A hedge spends a token of the target's
// retry budget like a retry: when the budget is spent, the call goes on
// with the attempts it has. A hedge is never sent once the caller's
// deadline is closer than Delay, nor when the call's context forbids
// retries ([RetriesAllowed]: the server-side chain stop). An attempt that
// fails with a retried code (see [Config.Codes]) makes the next hedge go at
// once (after the server's RetryInfo delay, if it gave one); a hedge that a
// client-side layer refuses (an open breaker, the throttle) stops the
// hedging; any other error ends the call. Hedges carry [AttemptKey] like
// retries and count in grpckit.retry.retries as well as
// grpckit.retry.hedges. Each attempt has its own reply and its own
// grpc.Peer, grpc.Header and grpc.Trailer targets, the caller's get the
// winner's, and grpc.OnFinish is called once, with the call's end. A
// hedged method's calls run their attempts in goroutines.
//
// Server-streaming calls are hedged until the first response message;
// client-streaming and bidirectional calls never are.
type HedgingConfig struct {
	// Methods are the full method names ("/user.v1.UserService/GetUser")
	// and whole services ("/user.v1.UserService/*") whose calls are hedged.
	// A method is hedged only when it may run twice: its proto option
	// idempotency_level is NO_SIDE_EFFECTS or IDEMPOTENT, or [Config.Methods]
	// says true (dedupe protection is not enough: two attempts may reach
	// servers at once). Default: none.
	Methods []string `yaml:"methods" json:"methods"`
	// MaxAttempts is the most attempts a hedged call makes, the first
	// included. 2 to 10; 0 means 2.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// Delay is the wait before each hedge. 0 derives it from the method's
	// latency: the Quantile of its first attempts that got an answer (a
	// first attempt cancelled because a hedge won counts as long as it ran)
	// over the last 10 to 20 seconds, recomputed every 16 calls, at least
	// MinDelay; until 20 of them are known, the method's calls are not
	// hedged. Default: 0.
	Delay duration.Duration `yaml:"delay" json:"delay"`
	// Quantile is the latency quantile a derived delay waits for, in
	// (0, 1): 0.95 hedges about one call in 20. 0 means 0.95.
	Quantile float64 `yaml:"quantile" json:"quantile"`
	// MinDelay is the least derived delay. At least 0. Default: 0.
	MinDelay duration.Duration `yaml:"min_delay" json:"min_delay"`
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		MaxAttempts:               3,
		Codes:                     []string{"UNAVAILABLE", "RESOURCE_EXHAUSTED"},
		InitialBackoff:            duration.Duration(50 * time.Millisecond),
		MaxBackoff:                duration.Duration(time.Second),
		Multiplier:                2,
		Jitter:                    0.2,
		BudgetRatio:               0.1,
		BudgetMinRetriesPerSecond: 10,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// compiled is a validated Config ready for use; it is never modified after
// compile returns.
type compiled struct {
	cfg       Config
	retryable statuscode.Set
	methods   middleware.MethodTable[bool]
	hedged    middleware.MethodTable[bool]
	// hedgeAttempts and quantile are Hedging's MaxAttempts and Quantile,
	// defaults applied.
	hedgeAttempts int
	quantile      float64
	attempts      []string // attempts[n] is strconv.Itoa(n), up to the larger MaxAttempts
}

func compile(c Config) (*compiled, error) {
	switch {
	case c.MaxAttempts < 1 || c.MaxAttempts > maxMaxAttempts:
		return nil, fmt.Errorf("retry: max_attempts: must be between 1 and %d, got %d", maxMaxAttempts, c.MaxAttempts)
	case c.InitialBackoff <= 0:
		return nil, fmt.Errorf("retry: initial_backoff: must be positive, got %v", c.InitialBackoff)
	case c.MaxBackoff < c.InitialBackoff:
		return nil, fmt.Errorf("retry: max_backoff: must be at least initial_backoff (%v), got %v", c.InitialBackoff, c.MaxBackoff)
	case !(c.Multiplier >= 1) || math.IsInf(c.Multiplier, 0):
		return nil, fmt.Errorf("retry: multiplier: must be at least 1, got %v", c.Multiplier)
	case !(c.Jitter >= 0 && c.Jitter < 1):
		return nil, fmt.Errorf("retry: jitter: must be at least 0 and below 1, got %v", c.Jitter)
	case !(c.BudgetRatio >= 0) || math.IsInf(c.BudgetRatio, 0):
		return nil, fmt.Errorf("retry: budget_ratio: must be a number at least 0, got %v", c.BudgetRatio)
	case !(c.BudgetMinRetriesPerSecond >= 0) || math.IsInf(c.BudgetMinRetriesPerSecond, 0):
		return nil, fmt.Errorf("retry: budget_min_retries_per_second: must be a number at least 0, got %v", c.BudgetMinRetriesPerSecond)
	case c.Hedging.MaxAttempts != 0 && (c.Hedging.MaxAttempts < 2 || c.Hedging.MaxAttempts > maxMaxAttempts):
		return nil, fmt.Errorf("retry: hedging: max_attempts: must be 0 (2) or between 2 and %d, got %d", maxMaxAttempts, c.Hedging.MaxAttempts)
	case c.Hedging.Delay < 0:
		return nil, fmt.Errorf("retry: hedging: delay: must be at least 0, got %v", c.Hedging.Delay)
	case !(c.Hedging.Quantile >= 0 && c.Hedging.Quantile < 1):
		return nil, fmt.Errorf("retry: hedging: quantile: must be 0 (0.95) or above 0 and below 1, got %v", c.Hedging.Quantile)
	case c.Hedging.MinDelay < 0:
		return nil, fmt.Errorf("retry: hedging: min_delay: must be at least 0, got %v", c.Hedging.MinDelay)
	}
	cc := &compiled{}
	retryable, err := statuscode.ParseSet(c.Codes)
	if err != nil {
		return nil, fmt.Errorf("retry: codes: %w", err)
	}
	cc.retryable = retryable
	t, err := middleware.NewMethodTable(c.Methods)
	if err != nil {
		return nil, fmt.Errorf("retry: methods: %w", err)
	}
	cc.methods = t
	hedged := make(map[string]bool, len(c.Hedging.Methods))
	for _, m := range c.Hedging.Methods {
		hedged[m] = true
	}
	if cc.hedged, err = middleware.NewMethodTable(hedged); err != nil {
		return nil, fmt.Errorf("retry: hedging: methods: %w", err)
	}
	cc.hedgeAttempts, cc.quantile = c.Hedging.MaxAttempts, c.Hedging.Quantile
	if cc.hedgeAttempts == 0 {
		cc.hedgeAttempts = 2
	}
	if cc.quantile == 0 {
		cc.quantile = 0.95
	}
	cc.attempts = make([]string, max(c.MaxAttempts, cc.hedgeAttempts)+1)
	for n := range cc.attempts {
		cc.attempts[n] = strconv.Itoa(n)
	}
	cc.cfg = c.clone()
	return cc, nil
}

// retries reports whether err's code is retried. RESOURCE_EXHAUSTED is
// retried only when the server said when (google.rpc.RetryInfo), as kit's
// overload and rate limit layers do: grpc-go's own RESOURCE_EXHAUSTED (a
// message over the size limit) would fail again.
func (c *compiled) retries(err error) bool {
	code := status.Code(err)
	if code == codes.ResourceExhausted {
		if _, ok := retryDelay(err); !ok {
			return false
		}
	}
	return c.retryable.Has(code)
}

// backoff returns the wait before retry n (1 for the first retry) after err,
// and false when err asks for a longer wait than MaxBackoff.
func (c *compiled) backoff(n int, err error) (time.Duration, bool) {
	d := float64(c.cfg.InitialBackoff) * math.Pow(c.cfg.Multiplier, float64(n-1))
	d = min(d, float64(c.cfg.MaxBackoff))
	if j := c.cfg.Jitter; j > 0 {
		d *= 1 + j*(2*rand.Float64()-1)
	}
	wait := time.Duration(d)
	if pushback, ok := retryDelay(err); ok {
		if pushback > time.Duration(c.cfg.MaxBackoff) {
			return 0, false
		}
		wait = max(wait, pushback)
	}
	return wait, true
}

// retryDelay returns the delay the first google.rpc.RetryInfo detail of err
// asks for. A retry_delay that is negative or not a valid
// google.protobuf.Duration (nanos out of range or of the other sign than
// seconds, seconds beyond 10,000 years) is ignored, as if the server had
// sent no RetryInfo: a pushback is never negative.
func retryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok || len(st.Proto().GetDetails()) == 0 {
		return 0, false
	}
	for _, d := range st.Details() {
		ri, ok := d.(*errdetails.RetryInfo)
		if !ok {
			continue
		}
		rd := ri.GetRetryDelay()
		if rd == nil || rd.CheckValid() != nil || rd.GetSeconds() < 0 || rd.GetNanos() < 0 {
			continue
		}
		return rd.AsDuration(), true
	}
	return 0, false
}

// clone returns c with its own copies of the lists and maps.
func (c Config) clone() Config {
	c.Codes = slices.Clone(c.Codes)
	c.Methods = maps.Clone(c.Methods)
	c.Hedging.Methods = slices.Clone(c.Hedging.Methods)
	return c
}
