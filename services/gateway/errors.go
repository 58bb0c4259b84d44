package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/grpckit/grpckit/kit/statuscode"
)

// StatusClientClosedRequest is the HTTP status of a request whose client
// went away before the answer (codes.Canceled), as nginx names it.
const StatusClientClosedRequest = 499

// HTTPStatus returns the HTTP status of a gRPC code, following the mapping
// of google.rpc.Code: InvalidArgument, FailedPrecondition and OutOfRange
// 400; Unauthenticated 401; PermissionDenied 403; NotFound 404;
// AlreadyExists and Aborted 409; ResourceExhausted 429; Canceled 499;
// Unimplemented 501; Unavailable 503; DeadlineExceeded 504; OK 200; any
// other code 500.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return StatusClientClosedRequest
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// codeName returns the google.rpc.Code name of c ("NOT_FOUND"); a code
// outside google.rpc.Code is UNKNOWN.
func codeName(c codes.Code) string {
	if c > codes.Unauthenticated {
		c = codes.Unknown
	}
	return statuscode.Name(c)
}

// errorBody is the JSON of every error answer:
//
//	{"error": {"code": "NOT_FOUND", "status": 404, "message": "...", "details": [...]}}
type errorBody struct {
	Error errorStatus `json:"error"`
}

type errorStatus struct {
	// Code is the google.rpc.Code name of the error.
	Code string `json:"code"`
	// Status repeats the HTTP status.
	Status int `json:"status"`
	// Message is a description for developers.
	Message string `json:"message"`
	// Details are google.rpc error details (BadRequest, RetryInfo, ...) in
	// protojson, each with its "@type"; never null.
	Details []json.RawMessage `json:"details"`
}

// apiError is an error answer: the HTTP status and the gRPC status whose
// code, message and details make the body.
type apiError struct {
	httpStatus int
	st         *status.Status
	header     http.Header // extra response headers; may be nil
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.httpStatus, codeName(e.st.Code()), e.st.Message())
}

// newError returns an error answer made by the gateway itself.
func newError(httpStatus int, c codes.Code, msg string, details ...protoadapt.MessageV1) *apiError {
	st := status.New(c, msg)
	if len(details) > 0 {
		if d, err := st.WithDetails(details...); err == nil {
			st = d
		}
	}
	return &apiError{httpStatus: httpStatus, st: st}
}

// badRequest returns a 400 INVALID_ARGUMENT answer with a BadRequest detail
// naming field.
func badRequest(field, desc string) *apiError {
	return newError(http.StatusBadRequest, codes.InvalidArgument, field+" "+desc,
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}})
}

// writeError writes e as JSON. A 401 gets a WWW-Authenticate challenge
// unless e brings its own; a 429 or 503 whose status carries a
// google.rpc.RetryInfo gets Retry-After.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	if e.httpStatus == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	}
	if e.httpStatus == http.StatusTooManyRequests || e.httpStatus == http.StatusServiceUnavailable {
		if d, ok := retryDelay(e.st); ok {
			h.Set("Retry-After", retryAfter(d))
		}
	}
	body := errorBody{Error: errorStatus{
		Code:    codeName(e.st.Code()),
		Status:  e.httpStatus,
		Message: e.st.Message(),
		Details: detailsJSON(e.st.Proto().GetDetails()),
	}}
	b, err := json.Marshal(body)
	if err != nil { // cannot happen: every detail is valid JSON
		b = []byte(`{"error":{"code":"INTERNAL","status":500,"message":"internal error","details":[]}}`)
		e = &apiError{httpStatus: http.StatusInternalServerError}
	}
	writeJSON(w, e.httpStatus, b)
}

// writeJSON writes a JSON answer.
func writeJSON(w http.ResponseWriter, httpStatus int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(httpStatus)
	w.Write(append(body, '\n'))
}

// detailsJSON returns details in protojson; a detail whose type this binary
// does not know is reduced to its "@type".
func detailsJSON(details []*anypb.Any) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(details))
	for _, d := range details {
		b, err := protojson.Marshal(d)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"@type": d.GetTypeUrl()})
		}
		out = append(out, b)
	}
	return out
}

// retryDelay returns the retry_delay of st's RetryInfo detail, if any.
func retryDelay(st *status.Status) (d float64, ok bool) {
	for _, det := range st.Details() {
		if ri, isRI := det.(*errdetails.RetryInfo); isRI && ri.GetRetryDelay().IsValid() {
			return ri.GetRetryDelay().AsDuration().Seconds(), true
		}
	}
	return 0, false
}

// maxRetryAfter bounds Retry-After values, in seconds: a day.
const maxRetryAfter = 86400

// retryAfter formats a delay in seconds as a Retry-After value: whole
// seconds, rounded up, at least 1 and at most a day.
func retryAfter(seconds float64) string {
	return strconv.FormatInt(int64(math.Min(maxRetryAfter, math.Max(1, math.Ceil(seconds)))), 10)
}
