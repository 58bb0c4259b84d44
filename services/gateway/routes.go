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
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// route is one route of the gateway.
type route struct {
	method string // GET routes also answer HEAD
	path   string // http.ServeMux path template
	access access
	serve  func(g *Gateway, w http.ResponseWriter, r *http.Request)
}

// access says who may use a route.
type access uint8

const (
	// accessPublic: anyone. The backend calls carry the gateway's own
	// identity.
	accessPublic access = iota
	// accessToken: a request with a valid bearer token, which the backend calls
	// carry on (the services check it again).
	accessToken
	// accessOwner: a valid token whose subject is the {id} of the path (a user
	// changes only itself), or an admin's (auth.AdminClaim); else 403.
	accessOwner
)

// routes are the gateway's routes; openapi.json documents each of them.
var routes = []route{
	{http.MethodGet, "/v1/hello/{name}", accessPublic, (*Gateway).sayHello},
	{http.MethodPost, "/v1/users", accessToken, (*Gateway).createUser},
	{http.MethodGet, "/v1/users", accessToken, (*Gateway).listUsers},
	{http.MethodGet, "/v1/users/{id}", accessToken, (*Gateway).getUser},
	{http.MethodPatch, "/v1/users/{id}", accessOwner, (*Gateway).updateUser},
	{http.MethodDelete, "/v1/users/{id}", accessOwner, (*Gateway).deleteUser},
	{http.MethodGet, "/openapi.json", accessPublic, (*Gateway).openAPI},
}

// Names of the backends, in messages and logs.
const (
	backendGreeter = "greeter"
	backendUser    = "user"
)

// newMux returns the mux of routes: each route, a JSON 405 with Allow for
// other methods on a route's path, and a JSON 404 for every other path.
func (g *Gateway) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, g.handler(rt))
		if _, ok := allowed[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
		if rt.method == http.MethodGet {
			allowed[rt.path] = append(allowed[rt.path], http.MethodHead)
		}
	}
	for _, p := range paths {
		methods := allowed[p]
		slices.Sort(methods)
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			e := newError(http.StatusMethodNotAllowed, codes.Unimplemented,
				fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, p, allow))
			e.header = http.Header{"Allow": {allow}}
			writeError(w, e)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError(http.StatusNotFound, codes.NotFound, "no route for "+r.URL.Path))
	})
	return mux
}

// handler checks the bearer token (and ownership) a route asks for, then
// serves it with the token in the outgoing metadata of r's context, so
// that the backend calls carry the caller's identity.
func (g *Gateway) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.access != accessPublic {
			c, e := g.authenticate(r)
			if e != nil {
				writeError(w, e)
				return
			}
			if rec, ok := w.(*recorder); ok {
				rec.subject = c.subject
			}
			if id := r.PathValue("id"); rt.access == accessOwner && c.subject != id && !c.admin {
				writeError(w, newError(http.StatusForbidden, codes.PermissionDenied,
					fmt.Sprintf("%q may not change user %q: only that user or an admin may", c.subject, id)))
				return
			}
			r = r.WithContext(metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+c.token))
		}
		if key := r.Header.Values("Idempotency-Key"); len(key) > 0 && r.Method != http.MethodGet {
			if len(key) > 1 || !dedupe.ValidRequestID(key[0]) {
				writeError(w, newError(http.StatusBadRequest, codes.InvalidArgument,
					"Idempotency-Key must be one header of 1 to 128 printable ASCII characters without spaces"))
				return
			}
			// The backend's request id: a repeated request with the same key
			// (and caller) gets the first result instead of running again.
			r = r.WithContext(metadata.AppendToOutgoingContext(r.Context(), dedupe.RequestIDKey, key[0]))
		}
		rt.serve(g, w, r)
	})
}

// sayHello serves GET /v1/hello/{name}: greeter SayHello.
func (g *Gateway) sayHello(w http.ResponseWriter, r *http.Request) {
	if _, e := checkQuery(r); e != nil {
		writeError(w, e)
		return
	}
	name, e := pathValue(r, "name")
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := g.backendContext(r)
	defer cancel()
	resp, err := g.greeter.SayHello(ctx, &greeterv1.SayHelloRequest{Name: name})
	g.reply(w, r, backendGreeter, http.StatusOK, resp, err)
}

// createUser serves POST /v1/users: user CreateUser, 201 with Location.
func (g *Gateway) createUser(w http.ResponseWriter, r *http.Request) {
	req := &userv1.CreateUserRequest{}
	if e := g.decode(w, r, req); e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := g.backendContext(r)
	defer cancel()
	resp, err := g.users.CreateUser(ctx, req)
	if err == nil {
		w.Header().Set("Location", "/v1/users/"+url.PathEscape(resp.GetUser().GetId()))
	}
	g.reply(w, r, backendUser, http.StatusCreated, resp, err)
}

// listUsers serves GET /v1/users?page_size=&page_token=: user ListUsers.
func (g *Gateway) listUsers(w http.ResponseWriter, r *http.Request) {
	q, e := checkQuery(r, "page_size", "page_token")
	if e != nil {
		writeError(w, e)
		return
	}
	req := &userv1.ListUsersRequest{PageToken: q.Get("page_token")}
	if !utf8.ValidString(req.PageToken) {
		writeError(w, badRequest("page_token", "must be valid UTF-8"))
		return
	}
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			writeError(w, badRequest("page_size", "must be an integer"))
			return
		}
		req.PageSize = int32(n)
	}
	ctx, cancel := g.backendContext(r)
	defer cancel()
	resp, err := g.users.ListUsers(ctx, req)
	g.reply(w, r, backendUser, http.StatusOK, resp, err)
}

// getUser serves GET /v1/users/{id}: user GetUser.
func (g *Gateway) getUser(w http.ResponseWriter, r *http.Request) {
	if _, e := checkQuery(r); e != nil {
		writeError(w, e)
		return
	}
	id, e := pathValue(r, "id")
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := g.backendContext(r)
	defer cancel()
	resp, err := g.users.GetUser(ctx, &userv1.GetUserRequest{Id: id})
	g.reply(w, r, backendUser, http.StatusOK, resp, err)
}

// updateUser serves PATCH /v1/users/{id}: user UpdateUser with the body's
// name and email; an id in the body must be the path's.
func (g *Gateway) updateUser(w http.ResponseWriter, r *http.Request) {
	req := &userv1.UpdateUserRequest{}
	if e := g.decode(w, r, req); e != nil {
		writeError(w, e)
		return
	}
	id, e := pathValue(r, "id")
	if e != nil {
		writeError(w, e)
		return
	}
	if req.GetId() != "" && req.GetId() != id {
		writeError(w, badRequest("id", "must be the id of the path when set"))
		return
	}
	req.Id = id
	ctx, cancel := g.backendContext(r)
	defer cancel()
	resp, err := g.users.UpdateUser(ctx, req)
	g.reply(w, r, backendUser, http.StatusOK, resp, err)
}

// deleteUser serves DELETE /v1/users/{id}: user DeleteUser.
func (g *Gateway) deleteUser(w http.ResponseWriter, r *http.Request) {
	if _, e := checkQuery(r); e != nil {
		writeError(w, e)
		return
	}
	id, e := pathValue(r, "id")
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := g.backendContext(r)
	defer cancel()
	resp, err := g.users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: id})
	g.reply(w, r, backendUser, http.StatusOK, resp, err)
}

// openAPI serves GET /openapi.json.
func (g *Gateway) openAPI(w http.ResponseWriter, r *http.Request) {
	if _, e := checkQuery(r); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, openAPIDocument)
}

// pathValue returns the (unescaped) path parameter name of r, which must be
// valid UTF-8 to go into a proto string field.
func pathValue(r *http.Request, name string) (string, *apiError) {
	v := r.PathValue(name)
	if !utf8.ValidString(v) {
		return "", badRequest(name, "must be valid UTF-8")
	}
	return v, nil
}

// checkQuery refuses query parameters other than allowed, and repeated ones.
func checkQuery(r *http.Request, allowed ...string) (url.Values, *apiError) {
	q, err := url.ParseQuery(r.URL.RawQuery) // r.URL.Query() would drop what it cannot parse
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

// backendContext returns the context of a backend call: the request's,
// bounded by the backend timeout.
func (g *Gateway) backendContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), time.Duration(g.cfg.Load().BackendTimeout))
}

// unmarshal decodes request bodies strictly: unknown fields are errors.
var unmarshal = protojson.UnmarshalOptions{}

// marshal encodes answers with the proto field names (snake_case, as the
// query parameters) and every field, empty ones included.
var marshal = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// decode reads r's JSON body into msg: 415 unless the Content-Type is
// application/json, 413 beyond MaxBodyBytes, 400 for anything protojson
// refuses (syntax, unknown fields, wrong types).
func (g *Gateway) decode(w http.ResponseWriter, r *http.Request, msg proto.Message) *apiError {
	if _, e := checkQuery(r); e != nil {
		return e
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return newError(http.StatusUnsupportedMediaType, codes.InvalidArgument, "Content-Type must be application/json")
	}
	limit := g.cfg.Load().MaxBodyBytes
	tooLarge := func() *apiError {
		return newError(http.StatusRequestEntityTooLarge, codes.InvalidArgument,
			fmt.Sprintf("request body is larger than %d bytes", limit))
	}
	if r.ContentLength > limit {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		return newError(http.StatusBadRequest, codes.InvalidArgument, "reading the request body: "+err.Error())
	}
	if err := unmarshal.Unmarshal(body, msg); err != nil {
		return badRequest("body", "is not a valid JSON request: "+strings.TrimPrefix(err.Error(), "proto: "))
	}
	return nil
}

// reply writes a backend call's answer: resp as JSON with status, or err
// mapped by [HTTPStatus]. Server-side failures (5xx) are logged and
// answered with a generic message, keeping only a RetryInfo detail, so that
// backend internals (addresses, queries) do not reach clients.
func (g *Gateway) reply(w http.ResponseWriter, r *http.Request, backend string, httpStatus int, resp proto.Message, err error) {
	if err != nil {
		writeError(w, g.backendError(r, backend, err))
		return
	}
	b, err := marshal.Marshal(resp)
	if err == nil {
		var buf bytes.Buffer
		if err = json.Compact(&buf, b); err == nil {
			b = buf.Bytes()
		}
	}
	if err != nil {
		writeError(w, g.backendError(r, backend, status.Errorf(codes.Internal, "encoding the answer: %v", err)))
		return
	}
	writeJSON(w, httpStatus, b)
}

// backendError converts the error of a backend call to an answer.
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
