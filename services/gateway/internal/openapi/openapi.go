package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Operation is one route of the gateway: an HTTP method and path bound to
// a gRPC method, as its google.api.http annotation says.
type Operation struct {
	// Method is the HTTP method in upper case: GET, POST, PUT, PATCH, DELETE
	// or a custom one. A method OpenAPI 3.0 has no place for (any but GET,
	// PUT, POST, DELETE, OPTIONS, HEAD, PATCH and TRACE) is checked and then
	// left out of the document.
	Method string
	// Path is the OpenAPI path, with variables as "{field.path}":
	// "/v1/users/{id}", "/v1/{name}:publish".
	Path string
	// PathParams are the field paths of the path's variables, in their
	// order in Path; nested ones as "a.b".
	PathParams []string
	// Input and Output are the request and response messages.
	Input, Output protoreflect.MessageDescriptor
	// Body is "" (no body: the fields not bound by the path are query
	// parameters), "*" (the whole input but its path fields) or the name of
	// a top-level field of Input.
	Body string
	// ResponseBody is "" (the whole Output) or the name of a top-level field
	// of Output.
	ResponseBody string
	// Bearer is whether the route needs "Authorization: Bearer <jwt>"; false
	// for a public route.
	Bearer bool
	// ServerStreaming is whether the answer is newline-delimited JSON
	// (application/x-ndjson), one Output (or ResponseBody field) per line.
	ServerStreaming bool
	// Service is the full proto service name ("user.v1.UserService"), the
	// operation's tag.
	Service string
	// RPC is the full method name ("/user.v1.UserService/GetUser"), named in
	// the description.
	RPC string
	// OperationID is the operation's id, unique in the document:
	// "user.v1.UserService.GetUser", with "_1", "_2" for additional
	// bindings.
	OperationID string
}

// Info is the info section of the document.
type Info struct {
	// Title and Version are required.
	Title   string `json:"title"`
	Version string `json:"version"`
	// Description is optional, CommonMark.
	Description string `json:"description,omitempty"`
}

// MaxQueryDepth is the most field names a query parameter's name has
// ("a.b.c.d.e"): fields of messages nested deeper are not query
// parameters. (A recursive message ends sooner: the fields of a message
// are not query parameters inside a field of the same message.)
const MaxQueryDepth = 5

// Media types of the answers.
const (
	jsonType   = "application/json"
	ndjsonType = "application/x-ndjson"
)

// bearerScheme is the name of the bearer JWT security scheme.
const bearerScheme = "bearer"

// Build returns the OpenAPI 3.0.3 document, in indented JSON, of the
// operations. The same arguments give the same bytes: paths, schemas and
// the other maps are sorted by key, tags by name, parameters in the order
// of the path and of the fields. The error wraps [ErrInvalidInfo],
// [ErrInvalidOperation], [ErrConflict] or [ErrNameClash]. Build keeps no
// state: it may be called concurrently, with descriptors that are safe for
// concurrent reads (all are).
func Build(info Info, ops []Operation) ([]byte, error) {
	if info.Title == "" || info.Version == "" {
		return nil, errorf(ErrInvalidInfo, "title %q and version %q are both required", info.Title, info.Version)
	}
	if err := checkOperations(ops); err != nil {
		return nil, err
	}
	doc := document{
		OpenAPI: "3.0.3",
		Info:    info,
		Paths:   map[string]map[string]*operation{},
		Components: components{
			Responses: map[string]response{},
			SecuritySchemes: map[string]securityScheme{bearerScheme: {
				Type:         "http",
				Scheme:       "bearer",
				BearerFormat: "JWT",
				Description:  "A JWT signed with a key of the gateway's configuration, in \"Authorization: Bearer <jwt>\".",
			}},
		},
	}
	s := newSchemas()
	errs := errorResponses()
	for _, er := range errs {
		doc.Components.Responses[er.name] = er.response
	}
	for i := range ops {
		op := &ops[i]
		key, ok := pathItemKey(op.Method)
		if !ok {
			continue
		}
		if doc.Paths[op.Path] == nil {
			doc.Paths[op.Path] = map[string]*operation{}
		}
		doc.Paths[op.Path][key] = describeOperation(s, errs, op)
		if !slices.ContainsFunc(doc.Tags, func(t tag) bool { return t.Name == op.Service }) {
			doc.Tags = append(doc.Tags, tag{Name: op.Service})
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	slices.SortFunc(doc.Tags, func(a, b tag) int { return strings.Compare(a.Name, b.Name) })
	doc.Components.Schemas = s.byName

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err) // cannot happen: every value is plain data
	}
	return buf.Bytes(), nil
}

// pathItemKey returns the key of an HTTP method in an OpenAPI path item,
// false for a method OpenAPI 3.0 cannot express.
func pathItemKey(method string) (string, bool) {
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete,
		http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace:
		return strings.ToLower(method), true
	}
	return "", false
}

// describeOperation returns the OpenAPI operation of op; errs are the
// shared error answers.
func describeOperation(s *schemas, errs []errorResponse, op *Operation) *operation {
	o := &operation{
		Tags:        []string{op.Service},
		Summary:     summary(op),
		Description: description(op),
		OperationID: op.OperationID,
		Parameters:  append(pathParameters(s, op), queryParameters(s, op)...),
		RequestBody: requestBodyOf(s, op),
		Responses:   map[string]response{"200": answer(s, op)},
		Security:    []map[string][]string{}, // public: an empty list, not none
	}
	for _, er := range errs {
		if er.when(op) {
			o.Responses[er.status] = responseRef(er.name)
		}
	}
	if op.Bearer {
		o.Security = append(o.Security, map[string][]string{bearerScheme: {}})
	}
	return o
}

// summary returns the method's short name ("GetUser"), or the operation id
// without an RPC name.
func summary(op *Operation) string {
	if op.RPC == "" {
		return op.OperationID
	}
	return op.RPC[strings.LastIndex(op.RPC, "/")+1:]
}

// description says which RPC op calls, whether it needs a token and
// whether it streams.
func description(op *Operation) string {
	var text []string
	if op.RPC != "" {
		text = append(text, "Calls "+op.RPC+".")
	}
	if op.Bearer {
		text = append(text, "Needs \"Authorization: Bearer <jwt>\".")
	} else {
		text = append(text, "Public: needs no token.")
	}
	if op.ServerStreaming {
		text = append(text, "Server streaming: the answer is newline-delimited JSON, one message per line.")
	}
	return strings.Join(text, " ")
}

// requestBodyOf returns the request body of op, nil for none.
func requestBodyOf(s *schemas, op *Operation) *requestBody {
	var sc *schema
	var fromPath []string // path fields that stay in the body's schema
	switch op.Body {
	case "":
		return nil
	case "*":
		var top []string
		for _, p := range op.PathParams {
			if strings.Contains(p, ".") {
				fromPath = append(fromPath, p)
			} else {
				top = append(top, p)
			}
		}
		if len(top) == 0 || isWellKnown(op.Input) {
			sc = s.message(op.Input)
		} else {
			body := s.describeMessage(op.Input, top)
			sc = &body
		}
	default:
		sc = s.bodyField(op.Input.Fields().ByName(protoreflect.Name(op.Body)))
		for _, p := range op.PathParams {
			if strings.HasPrefix(p, op.Body+".") {
				fromPath = append(fromPath, strings.TrimPrefix(p, op.Body+"."))
			}
		}
	}
	rb := &requestBody{Required: true, Content: map[string]mediaType{jsonType: {Schema: sc}}}
	if len(fromPath) > 0 {
		rb.Description = "The path sets " + strings.Join(fromPath, ", ") + "."
	}
	return rb
}

// answer returns the 200 answer of op.
func answer(s *schemas, op *Operation) response {
	var sc *schema
	what := string(op.Output.FullName()) // one message of the answer
	if op.ResponseBody == "" {
		sc = s.message(op.Output)
	} else {
		sc = s.bodyField(op.Output.Fields().ByName(protoreflect.Name(op.ResponseBody)))
		what = "the " + op.ResponseBody + " field of " + what
	}
	if op.ServerStreaming {
		return response{
			Description: "A stream of newline-delimited JSON, one line per message: " + what + ".",
			Content:     map[string]mediaType{ndjsonType: {Schema: sc}},
		}
	}
	return response{
		Description: "The answer: " + what + ".",
		Content:     map[string]mediaType{jsonType: {Schema: sc}},
	}
}

// document is an OpenAPI 3.0 document, with the members this package
// writes.
type document struct {
	OpenAPI    string                           `json:"openapi"`
	Info       Info                             `json:"info"`
	Tags       []tag                            `json:"tags,omitempty"`
	Paths      map[string]map[string]*operation `json:"paths"`
	Components components                       `json:"components"`
}

type tag struct {
	Name string `json:"name"`
}

type components struct {
	Schemas         map[string]*schema        `json:"schemas"`
	Responses       map[string]response       `json:"responses"`
	SecuritySchemes map[string]securityScheme `json:"securitySchemes"`
}

type securityScheme struct {
	Type         string `json:"type"`
	Scheme       string `json:"scheme"`
	BearerFormat string `json:"bearerFormat"`
	Description  string `json:"description"`
}

type operation struct {
	Tags        []string              `json:"tags"`
	Summary     string                `json:"summary,omitempty"`
	Description string                `json:"description,omitempty"`
	OperationID string                `json:"operationId"`
	Parameters  []parameter           `json:"parameters,omitempty"`
	RequestBody *requestBody          `json:"requestBody,omitempty"`
	Responses   map[string]response   `json:"responses"`
	Security    []map[string][]string `json:"security"`
}

type requestBody struct {
	Description string               `json:"description,omitempty"`
	Required    bool                 `json:"required"`
	Content     map[string]mediaType `json:"content"`
}
