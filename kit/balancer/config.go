package balancer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/serviceconfig"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// Config is the JSON configuration of the kit_weighted policy, given in the
// service config:
//
//	{"loadBalancingConfig": [{"kit_weighted": {"consecutive_failures": 3}}]}
//
// Every field is optional; `{}` means all defaults. Keys are snake_case, the
// same in JSON and in YAML (kit/config's balancer section). Durations are
// strings such as "10s" or "1.5s". Unknown fields are an error, so a typo is
// not silently ignored.
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-" yaml:"-"`

	// FailureCodes are the status codes that count as failures of an
	// endpoint: they demote it and can eject it. Default: UNAVAILABLE,
	// DEADLINE_EXCEEDED (judged by DeadlineExceeded).
	FailureCodes []string `json:"failure_codes" yaml:"failure_codes"`
	// DemoteCodes demote an endpoint but never eject it. Default:
	// RESOURCE_EXHAUSTED: a saturated server refusing the excess is up, so
	// load shifts away from it but it is never ejected for it. Codes in
	// neither list never count against an endpoint. A status the server
	// sent ([statuscode.IsAnswer]: OK, an application error,
	// RESOURCE_EXHAUSTED) that is not in FailureCodes is an answer: it ends
	// the endpoint's run of consecutive failures, and under DeadlineExceeded
	// when_silent it shows that the endpoint is up.
	DemoteCodes []string `json:"demote_codes" yaml:"demote_codes"`
	// DeadlineExceeded is what a DEADLINE_EXCEEDED in FailureCodes counts
	// for ([statuscode.DeadlineRule]):
	//
	//   - "when_silent": a failure only when the endpoint gave no answer
	//     between the pick of the timed-out call and its end. Otherwise the
	//     endpoint is busy, not down: the timeout demotes it but never
	//     ejects it, and neither adds to its run of consecutive failures nor
	//     ends it. A black hole is ejected on the ConsecutiveFailures-th
	//     timeout of a call picked after its last answer. Each call carries
	//     its endpoint's count of answers from its pick, so the judgement is
	//     exact, but for an answer that comes at the moment of a pick, which
	//     may count on either side of it, and for the calls picked before a
	//     live change to when_silent, whose timeouts are failures and whose
	//     answers are not counted.
	//   - "failure": every DEADLINE_EXCEEDED is a failure, as before
	//     when_silent: an endpoint that lets calls queue into their
	//     deadlines is ejected like a down one.
	//   - "ignore": a DEADLINE_EXCEEDED never counts.
	//
	// In DemoteCodes a DEADLINE_EXCEEDED demotes, in neither list it never
	// counts, whatever DeadlineExceeded says. Default "when_silent".
	DeadlineExceeded statuscode.DeadlineRule `json:"deadline_exceeded" yaml:"deadline_exceeded"`

	// Window is the span over which outcomes are counted for ratio
	// ejection, made of buckets of Bucket each; the control loop ticks once
	// per bucket. Defaults: 10s and 1s. Window is at most 60 buckets.
	Window duration.Duration `json:"window" yaml:"window"`
	Bucket duration.Duration `json:"bucket" yaml:"bucket"`

	// MinMultiplier is the floor of demotion: a tick with failures halves an
	// endpoint's weight multiplier, never below this. Default 0.0625 (1/16);
	// range (0, 1].
	MinMultiplier float64 `json:"min_multiplier" yaml:"min_multiplier"`

	// ConsecutiveFailures ejects an endpoint on the call that makes this
	// many failures in a row, without waiting for a tick. Default 5; 0 turns
	// it off.
	ConsecutiveFailures int `json:"consecutive_failures" yaml:"consecutive_failures"`
	// MinRequests is the least number of calls in the window before
	// FailureRatio is applied. Default 10.
	MinRequests int `json:"min_requests" yaml:"min_requests"`
	// FailureRatio ejects an endpoint whose failures in the window reach
	// this share of its calls. Default 0.5; range (0, 1].
	FailureRatio float64 `json:"failure_ratio" yaml:"failure_ratio"`

	// BaseEjectionTime times the number of times an endpoint was ejected,
	// capped at MaxEjectionTime, with ±EjectionJitter, is how long an
	// ejection lasts. The count decays by one after a clean window.
	// Defaults: 5s, 300s, 0.1.
	BaseEjectionTime duration.Duration `json:"base_ejection_time" yaml:"base_ejection_time"`
	MaxEjectionTime  duration.Duration `json:"max_ejection_time" yaml:"max_ejection_time"`
	EjectionJitter   float64           `json:"ejection_jitter" yaml:"ejection_jitter"`
	// MaxEjectionPercent caps the share of endpoints ejected at once (never
	// the only endpoint). Default 50; range 0..100.
	MaxEjectionPercent int `json:"max_ejection_percent" yaml:"max_ejection_percent"`

	// SlowStart is how long a re-admitted endpoint ramps from
	// SlowStartInitial of its weight to all of it. Failing during the ramp
	// ejects it again for longer. Defaults: 10s and 0.1.
	SlowStart        duration.Duration `json:"slow_start" yaml:"slow_start"`
	SlowStartInitial float64           `json:"slow_start_initial" yaml:"slow_start_initial"`

	// PanicThreshold: when fewer than this percent of the READY endpoints
	// are usable (not ejected), calls are spread over all READY endpoints
	// rather than failed. Default 50; range 0..100.
	PanicThreshold int `json:"panic_threshold" yaml:"panic_threshold"`

	// LoadAware prefers, among the usable endpoints, the one with less work
	// per unit of weight. Each pick weighs the endpoint the schedule names
	// against a second one drawn from the schedule (so by weight); the cost
	// of each is its latency estimate times (1 + its calls in flight x the
	// mean effective weight / its own), and the second is taken only when
	// its cost is below (1 - LoadMargin) of the first's. With equal
	// latencies and no calls in flight the weighted shares stay exact;
	// under load they stay close (a pair of endpoints is drawn as often in
	// either order). When the second draw names the first endpoint again
	// and that one is over twice the weighted median latency (as of the
	// last tick), another endpoint is drawn instead. One call in 16 is
	// measured, and every probe (ProbeInterval). Calls in flight include
	// streams; a call longer than 10s is no latency sample. Default true.
	LoadAware bool `json:"load_aware" yaml:"load_aware"`
	// LatencyDecay is the time constant of an endpoint's latency estimate:
	// a sample taken LatencyDecay after the previous one moves the estimate
	// half way to it, one taken soon after moves it little. (The estimate
	// starts as the least of the endpoint's first 8 answers: a first call
	// slowed by a new connection does not stick.) A call that
	// was cancelled counts as at least as slow as the estimate (or as long
	// as it took); one that failed or was refused as twice the estimate,
	// however fast: neither makes an endpoint look fast, and a failure is
	// no first sample. Default 500ms.
	LatencyDecay duration.Duration `json:"latency_decay" yaml:"latency_decay"`
	// LoadMargin is how much cheaper the second candidate must be to be
	// taken instead of the scheduled one: a share in [0, 1). Default 0.5:
	// the second must cost less than half as much. Lower margins react to
	// smaller differences and move the weighted shares further from
	// exact under load.
	LoadMargin float64 `json:"load_margin" yaml:"load_margin"`
	// LatencyFloor is added to every latency estimate before two are
	// compared: differences well under it (the noise of calls that take
	// tens of microseconds) do not move calls, while a backend that takes
	// milliseconds longer than the others is still told apart. At least
	// 0. Default 200µs.
	LatencyFloor duration.Duration `json:"latency_floor" yaml:"latency_floor"`
	// ProbeInterval: an endpoint with no call measured for this long (times
	// one plus its calls in flight) is picked, and measured, on its next
	// turn in the schedule, whatever its cost, so that an endpoint that became fast again is measured and
	// wins its share back. Default 200ms.
	ProbeInterval duration.Duration `json:"probe_interval" yaml:"probe_interval"`

	failure, demote statuscode.Set // parsed FailureCodes and DemoteCodes
	// whenSilent: DEADLINE_EXCEEDED is in FailureCodes and DeadlineExceeded
	// is when_silent, so timeouts are judged against answers.
	whenSilent bool
	// decay, floor and probe are LatencyDecay, LatencyFloor and
	// ProbeInterval in nanoseconds; keep is 1 - LoadMargin.
	decay, keep, floor float64
	probe              int64
}

// DefaultConfig returns the configuration `{}` stands for.
func DefaultConfig() *Config {
	c := &Config{
		FailureCodes:        []string{"UNAVAILABLE", "DEADLINE_EXCEEDED"},
		DemoteCodes:         []string{"RESOURCE_EXHAUSTED"},
		DeadlineExceeded:    statuscode.DeadlineWhenSilent,
		Window:              duration.Duration(10 * time.Second),
		Bucket:              duration.Duration(time.Second),
		MinMultiplier:       1.0 / 16,
		ConsecutiveFailures: 5,
		MinRequests:         10,
		FailureRatio:        0.5,
		BaseEjectionTime:    duration.Duration(5 * time.Second),
		MaxEjectionTime:     duration.Duration(300 * time.Second),
		EjectionJitter:      0.1,
		MaxEjectionPercent:  50,
		SlowStart:           duration.Duration(10 * time.Second),
		SlowStartInitial:    0.1,
		PanicThreshold:      50,
		LoadAware:           true,
		LatencyDecay:        duration.Duration(500 * time.Millisecond),
		LoadMargin:          0.5,
		LatencyFloor:        duration.Duration(200 * time.Microsecond),
		ProbeInterval:       duration.Duration(200 * time.Millisecond),
	}
	_ = c.validate() // readies the parsed fields
	return c
}

// ParseConfig parses a kit_weighted configuration: defaults first, then the
// JSON, then validation. Errors name the field and start with the policy name.
func ParseConfig(js []byte) (*Config, error) {
	c := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: config %s: %w", Name, truncate(js), err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: config %s: trailing data", Name, truncate(js))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return c, nil
}

// Validate checks c as [ParseConfig] does, for a Config built in Go or read
// from YAML (kit/config's balancer section, with the same keys). It also
// readies c for use.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var err error
	if c.failure, err = parseCodes("failure_codes", c.FailureCodes); err != nil {
		errs = append(errs, err)
	}
	if c.demote, err = parseCodes("demote_codes", c.DemoteCodes); err != nil {
		errs = append(errs, err)
	}
	if both := c.failure & c.demote; both != 0 {
		bad("a code is in both failure_codes and demote_codes")
	}
	if err := c.DeadlineExceeded.Validate(); err != nil {
		bad("deadline_exceeded: %w", err)
	}
	c.whenSilent = c.failure.Has(codes.DeadlineExceeded) && c.DeadlineExceeded == statuscode.DeadlineWhenSilent
	if c.Bucket <= 0 {
		bad("bucket %v must be positive", time.Duration(c.Bucket))
	} else if c.Window < c.Bucket || c.Window > 60*c.Bucket || c.Window%c.Bucket != 0 {
		bad("window %v must be 1 to 60 whole buckets of %v", time.Duration(c.Window), time.Duration(c.Bucket))
	}
	if !(c.MinMultiplier > 0 && c.MinMultiplier <= 1) {
		bad("min_multiplier %v is outside (0, 1]", c.MinMultiplier)
	}
	if c.ConsecutiveFailures < 0 {
		bad("consecutive_failures %d must not be negative", c.ConsecutiveFailures)
	}
	if c.MinRequests < 1 {
		bad("min_requests %d must be at least 1", c.MinRequests)
	}
	if !(c.FailureRatio > 0 && c.FailureRatio <= 1) {
		bad("failure_ratio %v is outside (0, 1]", c.FailureRatio)
	}
	if c.BaseEjectionTime <= 0 {
		bad("base_ejection_time %v must be positive", time.Duration(c.BaseEjectionTime))
	}
	if c.MaxEjectionTime < c.BaseEjectionTime {
		bad("max_ejection_time %v is below base_ejection_time %v", time.Duration(c.MaxEjectionTime), time.Duration(c.BaseEjectionTime))
	}
	if !(c.EjectionJitter >= 0 && c.EjectionJitter < 1) {
		bad("ejection_jitter %v is outside [0, 1)", c.EjectionJitter)
	}
	if c.MaxEjectionPercent < 0 || c.MaxEjectionPercent > 100 {
		bad("max_ejection_percent %d is outside 0..100", c.MaxEjectionPercent)
	}
	if c.SlowStart < 0 {
		bad("slow_start %v must not be negative", time.Duration(c.SlowStart))
	}
	if !(c.SlowStartInitial > 0 && c.SlowStartInitial <= 1) {
		bad("slow_start_initial %v is outside (0, 1]", c.SlowStartInitial)
	}
	if c.PanicThreshold < 0 || c.PanicThreshold > 100 {
		bad("panic_threshold %d is outside 0..100", c.PanicThreshold)
	}
	if c.LatencyDecay <= 0 {
		bad("latency_decay %v must be positive", time.Duration(c.LatencyDecay))
	}
	if !(c.LoadMargin >= 0 && c.LoadMargin < 1) {
		bad("load_margin %v is outside [0, 1)", c.LoadMargin)
	}
	if c.LatencyFloor < 0 {
		bad("latency_floor %v must not be negative", time.Duration(c.LatencyFloor))
	}
	if c.ProbeInterval <= 0 {
		bad("probe_interval %v must be positive", time.Duration(c.ProbeInterval))
	}
	c.decay, c.keep, c.floor, c.probe = float64(c.LatencyDecay), 1-c.LoadMargin, float64(c.LatencyFloor), int64(c.ProbeInterval)
	return errors.Join(errs...)
}

// parseCodes reads the status code names of field.
func parseCodes(field string, names []string) (statuscode.Set, error) {
	set, err := statuscode.ParseSet(names)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return set, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// windowBuckets is the number of buckets in the window.
func (c *Config) windowBuckets() int { return int(c.Window / c.Bucket) }
