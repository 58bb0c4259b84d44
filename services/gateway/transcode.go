package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/services/gateway/internal/httprule"
)

// Response header metadata of a backend that the gateway turns into HTTP:
// a 2xx status other than 200 ("201"), and the Location of what a call
// created (a path, "/v1/users/42").
const (
	HTTPCodeHeader = "x-http-code"
	LocationHeader = "location"
)

// serve serves a request on route b: the route's limits and access, then
// the request message, the backend call and the answer.
func (g *Gateway) serve(w *recorder, r *http.Request, cfg *liveConfig, b *binding, vars []httprule.Binding, ip string, now time.Time) {
	st := cfg.policy(b.rpc)
	if st != nil && st.limiter != nil {
		if ok, scope, d := st.limiter.allow(ip, now); !ok {
			scope = map[string]string{scopeGlobal: scopeRoute, scopeClient: scopeRouteClient}[scope]
			w.limited = scope
			writeError(w, rateLimited(scope, d))
			return
		}
	}
	ctx, e := g.identity(w, r, b)
	if e != nil {
		writeError(w, e)
		return
	}
	if key := r.Header.Values("Idempotency-Key"); len(key) > 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if len(key) > 1 || !dedupe.ValidRequestID(key[0]) {
			writeError(w, newError(http.StatusBadRequest, codes.InvalidArgument,
				"Idempotency-Key must be one header of 1 to 128 printable ASCII characters without spaces"))
			return
		}
		if !b.safe {
			// The backend's request id: a repeated request with the same
			// key (and caller) gets the first result instead of running
			// again.
			ctx = dedupe.WithRequestID(ctx, key[0])
		}
	} else if !b.safe {
		// A request id of its own, kept across kit's retries: a retry that
		// lands on another instance gets the first result.
		ctx = dedupe.WithRequestID(ctx, "")
	}
	req := dynamicpb.NewMessage(b.method.Input())
	if e := g.decodeRequest(w, r, cfg, b, vars, req); e != nil {
		writeError(w, e)
		return
	}
	timeout := time.Duration(cfg.BackendTimeout)
	if st != nil && st.Timeout > 0 {
		timeout = time.Duration(st.Timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if b.method.IsStreamingServer() {
		g.stream(ctx, w, r, b, req)
		return
	}
	resp := dynamicpb.NewMessage(b.method.Output())
	var header metadata.MD
	err := b.api.Conn.Invoke(ctx, b.rpc, req, resp, grpc.Header(&header))
	if err != nil {
		writeError(w, g.backendError(r, b.api.Name, err))
		return
	}
	code := http.StatusOK
	if v := header.Get(HTTPCodeHeader); len(v) == 1 {
		if c, err := strconv.Atoi(v[0]); err == nil && c >= 200 && c <= 299 && c != http.StatusNoContent {
			code = c
		}
	}
	if v := header.Get(LocationHeader); len(v) == 1 && strings.HasPrefix(v[0], "/") && !strings.HasPrefix(v[0], "//") {
		w.Header().Set("Location", v[0])
	}
	body, err := g.encode(b, resp)
	if err != nil {
		writeError(w, g.backendError(r, b.api.Name, status.Errorf(codes.Internal, "encoding the answer: %v", err)))
		return
	}
	writeJSON(w, code, body)
}

// identity checks the bearer token the route asks for and returns the
// context of the backend call: with the caller's token in the outgoing
// metadata, or anonymous (no token, not even the gateway's own identity)
// for a public route called without a valid token.
func (g *Gateway) identity(w *recorder, r *http.Request, b *binding) (context.Context, *apiError) {
	if g.access(b) == accessPublic {
		tok, err := bearerToken(r.Header)
		if err == nil {
			if claims, err := g.auth.Verify(tok); err == nil {
				w.subject, _ = claims["sub"].(string)
				return metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+tok), nil
			}
		}
		// As kit's servers do: anything but a valid token leaves a public
		// call anonymous.
		return auth.Anonymous(r.Context()), nil
	}
	c, e := g.authenticate(r)
	if e != nil {
		return nil, e
	}
	w.subject = c.subject
	return metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+c.token), nil
}

// decodeRequest fills req from the body, the path variables and the query
// parameters, as b's annotation maps them.
func (g *Gateway) decodeRequest(w http.ResponseWriter, r *http.Request, cfg *liveConfig, b *binding, vars []httprule.Binding, req *dynamicpb.Message) *apiError {
	q, err := url.ParseQuery(r.URL.RawQuery) // r.URL.Query() would drop what it cannot parse
	if err != nil {
		return badRequest("query", "is malformed: "+err.Error())
	}
	if b.body == "*" && len(q) > 0 {
		k := slices.Sorted(maps.Keys(q))[0]
		return badRequest(k, "is not a query parameter of this route: the body carries the whole request")
	}
	if b.body != "" {
		raw, e := readBody(w, r, cfg.MaxBodyBytes)
		if e != nil {
			return e
		}
		if b.bodyField != nil {
			// The body is the JSON of one field: decode it as that field of
			// an object, so that every kind of field gets protojson's rules.
			name, _ := json.Marshal(b.bodyField.JSONName())
			raw = slices.Concat([]byte("{"), name, []byte(":"), raw, []byte("}"))
		}
		if err := unmarshalOptions(b.api.Types).Unmarshal(raw, req); err != nil {
			return badRequest("body", "is not a valid JSON request: "+strings.TrimPrefix(err.Error(), "proto: "))
		}
	}
	for _, v := range vars {
		if e := setPathField(req, v); e != nil {
			return e
		}
	}
	if b.body != "*" && len(q) > 0 {
		bound := func(f string) bool {
			return b.pathFields[f] || b.bodyField != nil && (f == b.body || strings.HasPrefix(f, b.body+"."))
		}
		if err := httprule.SetQuery(req, q, bound); err != nil {
			return fieldError(err, "query parameter")
		}
	}
	return nil
}

// setPathField sets the field of a path variable. A body that set it too
// must agree with the path.
func setPathField(req *dynamicpb.Message, v httprule.Binding) *apiError {
	fromPath := dynamicpb.NewMessage(req.Descriptor())
	if err := httprule.SetField(fromPath, v.Field, v.Value); err != nil {
		return fieldError(err, "path")
	}
	parent, fd := leaf(req, v.Field)
	pathParent, _ := leaf(fromPath, v.Field)
	want := pathParent.Get(fd)
	if parent.Has(fd) && !parent.Get(fd).Equal(want) {
		return badRequest(v.Field, "must be the value of the path when set in the body")
	}
	parent.Set(fd, want)
	return nil
}

// leaf returns the message holding the field of a dotted path in m,
// creating the messages on the way, and the field. The path is one that
// newBinding checked.
func leaf(m protoreflect.Message, path string) (protoreflect.Message, protoreflect.FieldDescriptor) {
	names := strings.Split(path, ".")
	for _, n := range names[:len(names)-1] {
		m = m.Mutable(m.Descriptor().Fields().ByName(protoreflect.Name(n))).Message()
	}
	return m, m.Descriptor().Fields().ByName(protoreflect.Name(names[len(names)-1]))
}

// fieldError turns an error of httprule's setters into a 400 naming the
// field.
func fieldError(err error, where string) *apiError {
	if fe, ok := errors.AsType[*httprule.FieldError](err); ok {
		return badRequest(fe.Field, fe.Reason)
	}
	return badRequest(where, err.Error())
}

// readBody reads r's JSON body: 415 unless the Content-Type is
// application/json, 413 beyond limit bytes, 400 when it cannot be read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, newError(http.StatusUnsupportedMediaType, codes.InvalidArgument, "Content-Type must be application/json")
	}
	tooLarge := func() *apiError {
		return newError(http.StatusRequestEntityTooLarge, codes.InvalidArgument,
			fmt.Sprintf("request body is larger than %d bytes", limit))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge()
		}
		return nil, newError(http.StatusBadRequest, codes.InvalidArgument, "reading the request body: "+err.Error())
	}
	if !json.Valid(body) {
		return nil, badRequest("body", "is not valid JSON")
	}
	return body, nil
}

// unmarshalOptions decodes request bodies strictly (unknown fields are
// errors), with the types of types for google.protobuf.Any.
func unmarshalOptions(types Resolver) protojson.UnmarshalOptions {
	if types == nil {
		types = protoregistry.GlobalTypes
	}
	return protojson.UnmarshalOptions{Resolver: types}
}

// marshalOptions encodes answers with the proto field names (snake_case,
// as the query parameters) and every field, empty ones included.
func marshalOptions(types Resolver) protojson.MarshalOptions {
	if types == nil {
		types = protoregistry.GlobalTypes
	}
	return protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Resolver: types}
}

// encode returns the JSON of a backend's answer: the whole message, or the
// field of the route's response_body.
func (g *Gateway) encode(b *binding, resp proto.Message) ([]byte, error) {
	raw, err := marshalOptions(b.api.Types).Marshal(resp)
	if err != nil {
		return nil, err
	}
	if b.respField != nil {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
		raw = fields[string(b.respField.Name())]
		if raw == nil {
			raw = []byte("null")
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// stream serves a server-streaming route as newline-delimited JSON, one
// answer message (or its response_body field) per line. An error before
// the first message is an error answer; one after it ends the stream with
// a last line {"error": {...}} in the error shape.
func (g *Gateway) stream(ctx context.Context, w *recorder, r *http.Request, b *binding, req proto.Message) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when the client goes away or a write fails
	s, err := b.api.Conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, b.rpc)
	if err == nil {
		if err = s.SendMsg(req); err == nil {
			err = s.CloseSend()
		}
	}
	if err != nil {
		writeError(w, g.backendError(r, b.api.Name, err))
		return
	}
	rc := http.NewResponseController(w)
	started := false
	for {
		resp := dynamicpb.NewMessage(b.method.Output())
		err := s.RecvMsg(resp)
		if err == io.EOF {
			if !started {
				w.Header().Set("Content-Type", ndjson)
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		if err != nil {
			e := g.backendError(r, b.api.Name, err)
			if !started {
				writeError(w, e)
				return
			}
			line, _ := json.Marshal(errorBody{Error: errorStatus{Code: codeName(e.st.Code()), Status: e.httpStatus,
				Message: e.st.Message(), Details: detailsJSON(e.st.Proto().GetDetails())}})
			w.Write(append(line, '\n'))
			return
		}
		line, err := g.encode(b, resp)
		if err != nil {
			line, _ = json.Marshal(errorBody{Error: errorStatus{Code: codeName(codes.Internal),
				Status: http.StatusInternalServerError, Message: "internal error", Details: []json.RawMessage{}}})
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", ndjson)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
		}
		if _, werr := w.Write(append(line, '\n')); werr != nil {
			return
		}
		if werr := rc.Flush(); werr != nil && !errors.Is(werr, http.ErrNotSupported) {
			return
		}
		if err != nil {
			return
		}
	}
}

// ndjson is the media type of streamed answers.
const ndjson = "application/x-ndjson"

// checkQuery refuses query parameters other than allowed, and repeated
// ones.
func checkQuery(r *http.Request, allowed ...string) (url.Values, *apiError) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query", "is malformed: "+err.Error())
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !slices.Contains(allowed, k):
			return nil, badRequest(k, "is not a query parameter of this route")
		case len(q[k]) > 1:
			return nil, badRequest(k, "must appear at most once")
		}
	}
	return q, nil
}

// backendError converts the error of a backend call to an answer.
// Server-side failures (5xx) are logged and answered with a generic
// message, keeping only a RetryInfo detail, so that backend internals
// (addresses, queries) do not reach clients.
func (g *Gateway) backendError(r *http.Request, backend string, err error) *apiError {
	st := status.Convert(err)
	c := st.Code()
	httpStatus := HTTPStatus(c)
	if httpStatus < 500 || httpStatus == StatusClientClosedRequest {
		return &apiError{httpStatus: httpStatus, st: st}
	}
	g.logger.LogAttrs(r.Context(), slog.LevelWarn, "backend call failed",
		slog.String("backend", backend), slog.String("path", r.URL.Path),
		slog.String("code", c.String()), slog.String("message", st.Message()))
	var msg string
	switch c {
	case codes.Unavailable:
		msg = "the " + backend + " service is unavailable"
	case codes.DeadlineExceeded:
		msg = "the " + backend + " service did not answer in time"
	case codes.Unimplemented:
		msg = "not implemented by the " + backend + " service"
	default:
		msg = "internal error"
	}
	p := st.Proto()
	p.Message = msg
	p.Details = slices.DeleteFunc(p.Details, func(d *anypb.Any) bool {
		return !d.MessageIs((*errdetails.RetryInfo)(nil))
	})
	return &apiError{httpStatus: httpStatus, st: status.FromProto(p)}
}
