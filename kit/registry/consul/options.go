package consul

import (
	"io"
	"log/slog"
	"time"
)

// Option configures a [Registry].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	checkInterval   time.Duration
	checkTimeout    time.Duration
	deregisterAfter time.Duration
	initialPassing  bool
	waitTime        time.Duration
	answerTimeout   time.Duration
	minInterval     time.Duration
	backoffBase     time.Duration
	backoffMax      time.Duration
	keeperMax       time.Duration // backoff cap of the registration keeper
	restartGrace    time.Duration
	logger          *slog.Logger
}

var defaultOptions = options{
	checkInterval:   2 * time.Second,
	checkTimeout:    time.Second,
	deregisterAfter: time.Minute,
	initialPassing:  true,
	waitTime:        5 * time.Minute,
	answerTimeout:   10 * time.Second,
	minInterval:     50 * time.Millisecond,
	backoffBase:     100 * time.Millisecond,
	backoffMax:      5 * time.Second,
	keeperMax:       time.Second,
	restartGrace:    10 * time.Second,
	logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
}

// WithCheckInterval sets how often Consul runs the gRPC health check of a
// registered instance, and WithCheckTimeout how long one check may take.
// Defaults: 2s and 1s.
func WithCheckInterval(interval, timeout time.Duration) Option {
	return optionFunc(func(o *options) {
		if interval > 0 {
			o.checkInterval = interval
		}
		if timeout > 0 {
			o.checkTimeout = timeout
		}
	})
}

// WithDeregisterCriticalAfter sets after how long a continuously critical
// instance is removed by Consul itself. Consul enforces a minimum of one minute
// (the default).
func WithDeregisterCriticalAfter(d time.Duration) Option {
	return optionFunc(func(o *options) { o.deregisterAfter = max(d, time.Minute) })
}

// WithInitialPassing sets whether a new registration starts passing (the
// default) or critical until its first health check. Starting passing is safe
// for kit servers: they register only once they serve and report SERVING.
func WithInitialPassing(passing bool) Option {
	return optionFunc(func(o *options) { o.initialPassing = passing })
}

// WithWaitTime sets the longest a blocking query waits for a change. Default 5m.
func WithWaitTime(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.waitTime = d
		}
	})
}

// WithAnswerTimeout sets how long a query may take beyond its blocking wait
// before it counts as failed (an agent that accepts connections but does not
// answer). Default 10s.
func WithAnswerTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.answerTimeout = d
		}
	})
}

// WithMinInterval sets the least time between two queries of one watcher (the
// rate limit of the watch loop). Default 50ms.
func WithMinInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.minInterval = max(d, 0) })
}

// WithBackoff sets the retry delay after a failed query: base, doubling up to
// max, with ±20% jitter. Defaults: 100ms and 5s.
func WithBackoff(base, max time.Duration) Option {
	return optionFunc(func(o *options) {
		if base > 0 {
			o.backoffBase = base
		}
		if max >= o.backoffBase {
			o.backoffMax = max
		}
	})
}

// WithRestartGrace sets how long a watch keeps its last set when, right
// after a failed query or an index that went backwards (a restarted agent),
// Consul answers that the service has no instance: a fresh agent lists
// nothing until the instances' registrations are restored (kit's keeper
// restores them within about a second of the agent answering, and their
// checks pass within a check interval). A service still empty after the
// grace period is reported empty. Default 10s; 0 reports it at once.
func WithRestartGrace(d time.Duration) Option {
	return optionFunc(func(o *options) { o.restartGrace = max(d, 0) })
}

// WithLogger sets the logger for registration and watch events. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}
