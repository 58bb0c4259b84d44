// Package statuscode is the one vocabulary of gRPC status code names in kit:
// the upper-case names of google.rpc.Code ("UNAVAILABLE",
// "DEADLINE_EXCEEDED"), as gRPC service configs, otelgrpc's
// rpc.grpc.status_code attribute and HTTP/JSON error bodies write them.
// Configuration sections list codes by these names; metrics, logs and the
// gateway print them.
package statuscode

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// names are the canonical names, indexed by code.
var names = [...]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// Name returns the canonical name of c ("UNAVAILABLE"), or "CODE(n)" for a
// code outside google.rpc.Code. It allocates nothing for known codes.
func Name(c codes.Code) string {
	if int(c) < len(names) {
		return names[c]
	}
	return "CODE(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Parse reads a canonical name; case and surrounding spaces do not matter.
// Numbers and unknown names are errors.
func Parse(name string) (codes.Code, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	for c, s := range names {
		if s == n {
			return codes.Code(c), nil
		}
	}
	return 0, fmt.Errorf("%q is not a status code name such as UNAVAILABLE", name)
}

// Set is a set of status codes. The zero Set is empty.
type Set uint32

// ParseSet reads a list of names into a Set. OK is refused: a successful
// call is never a failure, a retry or a demotion.
func ParseSet(list []string) (Set, error) {
	var s Set
	for _, n := range list {
		c, err := Parse(n)
		if err != nil {
			return 0, err
		}
		if c == codes.OK {
			return 0, fmt.Errorf("%q: OK cannot be listed", n)
		}
		s |= 1 << c
	}
	return s, nil
}

// Has reports whether c is in s.
func (s Set) Has(c codes.Code) bool { return c < 32 && s&(1<<c) != 0 }

// IsAnswer reports whether a call that ended with code c got an answer from
// the server: OK, an application error, RESOURCE_EXHAUSTED — any code but
// UNAVAILABLE (the server could not be reached or refused the call),
// DEADLINE_EXCEEDED (no answer in time) and CANCELLED (the caller gave up).
// An answer is a sign of life: a target that sends one is up, however busy.
func IsAnswer(c codes.Code) bool {
	return c != codes.Unavailable && c != codes.DeadlineExceeded && c != codes.Canceled
}

// DeadlineRule is what a DEADLINE_EXCEEDED counts for in the client's
// judges of a target's health, the circuit breaker (kit/middleware/breaker)
// and kit_weighted (kit/balancer): their `deadline_exceeded` setting.
type DeadlineRule string

// The values of a [DeadlineRule].
const (
	// DeadlineWhenSilent counts a DEADLINE_EXCEEDED as a failure only when
	// the target showed no sign of life while the call was out: no call to
	// it got an answer ([IsAnswer]) between the start of the timed-out call
	// and its end. Otherwise the target is busy, not down: the breaker
	// counts the call as neither success nor failure, kit_weighted shifts
	// load away from the endpoint without ejecting it. The default.
	DeadlineWhenSilent DeadlineRule = "when_silent"
	// DeadlineFailure counts every DEADLINE_EXCEEDED as a failure, as kit
	// did before when_silent: a busy target that lets calls queue into
	// their deadlines is cut off like a down one.
	DeadlineFailure DeadlineRule = "failure"
	// DeadlineIgnore never counts a DEADLINE_EXCEEDED: only UNAVAILABLE
	// (and, in kit_weighted, the other failure codes) can open a breaker or
	// eject an endpoint, so a black-holed target is never cut off.
	DeadlineIgnore DeadlineRule = "ignore"
)

// Validate returns an error unless r is one of the [DeadlineRule] values.
// The empty string is not a value: configurations start from their
// defaults, which name one.
func (r DeadlineRule) Validate() error {
	switch r {
	case DeadlineWhenSilent, DeadlineFailure, DeadlineIgnore:
		return nil
	}
	return fmt.Errorf("%q is not one of %s, %s, %s", string(r), DeadlineWhenSilent, DeadlineFailure, DeadlineIgnore)
}
