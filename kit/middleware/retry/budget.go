package retry

import (
	"math"
	"sync"
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
func (b *budget) deposit(cfg *Config, now time.Time) {
	b.mu.Lock()
	b.advanceLocked(cfg, now)
	b.earned += cfg.BudgetRatio
	b.mu.Unlock()
}

// withdraw spends a token for a retry and reports whether there was one.
func (b *budget) withdraw(cfg *Config, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked(cfg, now)
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
