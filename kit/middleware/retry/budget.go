package retry

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// budgetFade is the time constant with which earned retry tokens fade, so
// that the budget follows the call rate of about the last ten seconds.
const budgetFade = 10 * time.Second

// tokenEpsilon absorbs rounding: ten deposits of 0.1 make a token.
const tokenEpsilon = 1e-9

// budget is the retry budget of one target, shared by all its calls. It
// holds two kinds of tokens: earned ones (BudgetRatio per call, fading with
// budgetFade) and an allowance refilled at BudgetMinRetriesPerSecond, of
// which one second (at least one token) can be saved up. A retry spends one
// token, earned ones first.
type budget struct {
	refusalOpts []metric.AddOption // attributes of budget refusals

	// pending counts calls not yet folded into earned: a call only adds to
	// it (no clock, no lock); the fold happens when a retry asks for a token
	// and every foldEvery calls, so decay stays accurate to that batch.
	pending atomic.Int64

	mu        sync.Mutex
	earned    float64   // guarded by mu
	allowance float64   // guarded by mu
	last      time.Time // guarded by mu; when earned and allowance were last brought up to date
}

func newBudget(target string, now time.Time) *budget {
	return &budget{
		refusalOpts: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("target", target)))},
		allowance:   math.Inf(1), // clamped to a full allowance on first use
		last:        now,
	}
}

// advanceLocked brings the tokens up to now.
func (b *budget) advanceLocked(cfg *Config, now time.Time) {
	dt := now.Sub(b.last)
	if dt > 0 {
		b.earned *= math.Exp(-float64(dt) / float64(budgetFade))
		b.allowance += cfg.BudgetMinRetriesPerSecond * dt.Seconds()
		b.last = now
	}
	b.allowance = min(b.allowance, allowanceCap(cfg.BudgetMinRetriesPerSecond))
}

// allowanceCap is how much of the allowance can be saved up: one second of
// it, at least one token unless the allowance is off.
func allowanceCap(perSecond float64) float64 {
	if perSecond <= 0 {
		return 0
	}
	return max(1, perSecond)
}

// deposit records a call.
// foldEvery is how many deposits may accumulate before one folds them in.
const foldEvery = 1024

// deposit records one call. It reads the clock (now) only every foldEvery
// calls; otherwise it is one atomic add.
func (b *budget) deposit(cfg *Config, now func() time.Time) {
	if b.pending.Add(1)%foldEvery != 0 {
		return
	}
	b.mu.Lock()
	b.foldLocked(cfg, now())
	b.mu.Unlock()
}

// foldLocked brings the budget up to now and adds the pending calls'
// tokens, faded as if the calls had come evenly since the last fold.
func (b *budget) foldLocked(cfg *Config, now time.Time) {
	fade := 1.0
	if dt := now.Sub(b.last); dt > 0 {
		x := float64(dt) / float64(budgetFade)
		fade = -math.Expm1(-x) / x // mean of e^-t over [0, x]
	}
	b.advanceLocked(cfg, now)
	b.earned += float64(b.pending.Swap(0)) * cfg.BudgetRatio * fade
}

func (b *budget) withdraw(cfg *Config, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.foldLocked(cfg, now)
	switch {
	case b.earned >= 1-tokenEpsilon:
		b.earned = max(0, b.earned-1)
	case b.allowance >= 1-tokenEpsilon:
		b.allowance = max(0, b.allowance-1)
	default:
		return false
	}
	return true
}
