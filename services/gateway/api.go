package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/services/gateway/internal/httprule"
)

// API is what the gateway knows of one backend: how to call it, the gRPC
// services it serves, and which of their methods are public. The routes of
// a backend are the google.api.http annotations of its services' methods.
type API struct {
	// Name is the backend's name, as in Consul ("user"): in the route
	// table, error messages and logs.
	Name string
	// Services are the gRPC services the backend serves.
	Services []protoreflect.ServiceDescriptor
	// Types resolves the message types named by google.protobuf.Any
	// fields in JSON; nil: the global registry.
	Types Resolver
	// Public lists the methods callable without a token, as the backend
	// declares them: "/pkg.Service/Method", "/pkg.Service/*", or "*" for
	// every method.
	Public []string
	// Conn calls the backend. It should carry the caller's deadline and
	// cancellation and forward the token of the outgoing metadata, as kit
	// clients do; the gateway does not close it.
	Conn grpc.ClientConnInterface
}

// Resolver finds message and extension types by name, as
// protoregistry.GlobalTypes and dynamicpb.Types do.
type Resolver interface {
	protoregistry.MessageTypeResolver
	protoregistry.ExtensionTypeResolver
}

// binding is one route: an HTTP method and path template mapped to a gRPC
// method, with the request and answer mapping of its annotation.
type binding struct {
	api        *API
	rpc        string // full method name, "/pkg.Service/Method"
	method     protoreflect.MethodDescriptor
	httpMethod string
	template   *httprule.Template
	pattern    string                       // "GET /v1/users/{id}", in logs and metrics
	body       string                       // "", "*" or a field name
	bodyField  protoreflect.FieldDescriptor // for a field body
	respField  protoreflect.FieldDescriptor // response_body; nil: the whole answer
	pathFields map[string]bool              // field paths bound by the path
	public     bool                         // the backend declares the method public
	safe       bool                         // NO_SIDE_EFFECTS: no request id
	index      int                          // 0: the annotation's own binding, then additional_bindings from 1
}

// bindings returns the routes of api, and an error for each annotation that
// cannot be served (the method's other routes are kept).
func bindings(api *API) ([]*binding, []error) {
	public, err := middleware.NewMethodSet(slices.DeleteFunc(slices.Clone(api.Public), func(m string) bool { return m == "*" })...)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: public methods: %w", api.Name, err)}
	}
	all := slices.Contains(api.Public, "*")
	var out []*binding
	var errs []error
	for _, svc := range api.Services {
		methods := svc.Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				continue
			}
			rpc := "/" + string(svc.FullName()) + "/" + string(m.Name())
			if m.IsStreamingClient() {
				errs = append(errs, fmt.Errorf("%s %s: client and bidirectional streams have no HTTP route", api.Name, rpc))
				continue
			}
			_, isPublic := public.Lookup(rpc)
			opts, _ := m.Options().(*descriptorpb.MethodOptions)
			safe := opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
			rules := append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...)
			for idx, r := range rules {
				b, err := newBinding(api, rpc, m, r, idx)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", api.Name, rpc, err))
					continue
				}
				b.public, b.safe = all || isPublic, safe
				out = append(out, b)
			}
		}
	}
	return out, errs
}

// newBinding checks one HttpRule of method m against its messages.
func newBinding(api *API, rpc string, m protoreflect.MethodDescriptor, r *annotations.HttpRule, index int) (*binding, error) {
	var verb, path string
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		verb, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		verb, path = http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		verb, path = http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		verb, path = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		verb, path = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		verb, path = p.Custom.GetKind(), p.Custom.GetPath()
		if !validToken(verb) {
			return nil, fmt.Errorf("custom method %q is not an HTTP method name", verb)
		}
	default:
		return nil, errors.New("the annotation has no pattern")
	}
	if index > 0 && len(r.GetAdditionalBindings()) > 0 {
		return nil, errors.New("additional_bindings may not nest")
	}
	t, err := httprule.ParseTemplate(path)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", path, err)
	}
	b := &binding{
		api: api, rpc: rpc, method: m, httpMethod: verb, template: t,
		pattern: verb + " " + t.String(), body: r.GetBody(), pathFields: map[string]bool{}, index: index,
	}
	in := m.Input()
	for _, v := range t.Vars() {
		fd, err := fieldByPath(in, v)
		if err != nil {
			return nil, fmt.Errorf("path variable %q: %w", v, err)
		}
		if fd.IsList() || fd.IsMap() || (fd.Message() != nil && !scalarWellKnown(fd.Message().FullName())) {
			return nil, fmt.Errorf("path variable %q: a %s field cannot come from a path", v, kindName(fd))
		}
		b.pathFields[v] = true
	}
	switch b.body {
	case "", "*":
	default:
		if b.bodyField = in.Fields().ByName(protoreflect.Name(b.body)); b.bodyField == nil {
			return nil, fmt.Errorf("body %q is not a field of %s", b.body, in.FullName())
		}
		if b.pathFields[b.body] {
			return nil, fmt.Errorf("body %q is also bound by the path", b.body)
		}
	}
	if b.body != "" && verb == http.MethodGet {
		return nil, errors.New("a GET route has no body")
	}
	if rb := r.GetResponseBody(); rb != "" {
		if b.respField = m.Output().Fields().ByName(protoreflect.Name(rb)); b.respField == nil {
			return nil, fmt.Errorf("response_body %q is not a field of %s", rb, m.Output().FullName())
		}
	}
	return b, nil
}

// fieldByPath returns the field of msg named by a dotted path of proto
// field names; every field before the last must be a singular message.
func fieldByPath(msg protoreflect.MessageDescriptor, path string) (protoreflect.FieldDescriptor, error) {
	var fd protoreflect.FieldDescriptor
	for i, name := range strings.Split(path, ".") {
		if i > 0 {
			if fd.Message() == nil || fd.IsList() || fd.IsMap() {
				return nil, fmt.Errorf("%q is not a message field", fd.Name())
			}
			msg = fd.Message()
		}
		if fd = msg.Fields().ByName(protoreflect.Name(name)); fd == nil {
			return nil, fmt.Errorf("%s has no field %q", msg.FullName(), name)
		}
	}
	return fd, nil
}

// scalarWellKnown reports whether messages of name have a string form in
// protojson that a path variable can carry.
func scalarWellKnown(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
		"google.protobuf.StringValue", "google.protobuf.BytesValue", "google.protobuf.BoolValue",
		"google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.UInt32Value",
		"google.protobuf.UInt64Value", "google.protobuf.FloatValue", "google.protobuf.DoubleValue":
		return true
	}
	return false
}

// kindName names the kind of fd in messages.
func kindName(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return "map"
	case fd.IsList():
		return "repeated"
	case fd.Message() != nil:
		return "message"
	}
	return fd.Kind().String()
}

// validToken reports whether s is an HTTP token (RFC 9110), as a method
// name must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
