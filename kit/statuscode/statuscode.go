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
