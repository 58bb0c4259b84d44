package openapi

import (
	"net/http"

	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit/kit/statuscode"
)

// Names of this package's own component schemas.
const (
	errorSchema       = "Error"
	errorDetailSchema = "ErrorDetail"
)

func isFixedSchema(name string) bool { return name == errorSchema || name == errorDetailSchema }

// fixedSchemas returns the component schemas of the gateway's error body:
//
//	{"error": {"code": "NOT_FOUND", "status": 404, "message": "...", "details": [...]}}
func fixedSchemas() map[string]*schema {
	var codeNames []string
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		codeNames = append(codeNames, statuscode.Name(c))
	}
	return map[string]*schema{
		errorSchema: {
			Type:        "object",
			Description: "The body of every error answer.",
			Required:    []string{"error"},
			Properties: map[string]*schema{
				"error": {
					Type:     "object",
					Required: []string{"code", "status", "message", "details"},
					Properties: map[string]*schema{
						"code":    {Type: "string", Description: "The google.rpc.Code name.", Enum: codeNames},
						"status":  {Type: "integer", Description: "The HTTP status of the answer."},
						"message": {Type: "string", Description: "A description for developers."},
						"details": {
							Type:        "array",
							Description: "google.rpc error details (BadRequest, RetryInfo, ...) in protojson with lowerCamelCase names; never null.",
							Items:       refTo(errorDetailSchema),
						},
					},
				},
			},
		},
		errorDetailSchema: {
			Type:                 "object",
			Description:          `A google.rpc error detail: "@type" names its message, the other members are its fields.`,
			Required:             []string{"@type"},
			Properties:           map[string]*schema{"@type": {Type: "string", Example: "type.googleapis.com/google.rpc.BadRequest"}},
			AdditionalProperties: anyValue(),
		},
	}
}

// response is an OpenAPI Response Object, or a $ref to one.
type response struct {
	Ref         string               `json:"$ref,omitempty"`
	Description string               `json:"description,omitempty"`
	Headers     map[string]header    `json:"headers,omitempty"`
	Content     map[string]mediaType `json:"content,omitempty"`
}

// header is an OpenAPI Header Object.
type header struct {
	Description string  `json:"description"`
	Schema      *schema `json:"schema"`
}

// mediaType is an OpenAPI Media Type Object.
type mediaType struct {
	Schema  *schema `json:"schema"`
	Example any     `json:"example,omitempty"`
}

// errorResponse is one of the shared error answers of components.responses.
type errorResponse struct {
	name   string // key in components.responses
	status string // key in an operation's responses
	// when reports whether an operation answers it.
	when func(op *Operation) bool
	response
}

func always(*Operation) bool        { return true }
func withBody(op *Operation) bool   { return op.Body != "" }
func withBearer(op *Operation) bool { return op.Bearer }

// errorResponses lists the error answers of the gateway, in the order of
// their statuses; "default" covers the others (499, 501, ...).
func errorResponses() []errorResponse {
	retryAfter := header{
		Description: "Seconds until the request may succeed, when the error carries a google.rpc.RetryInfo.",
		Schema:      &schema{Type: "integer"},
	}
	badRequestExample := map[string]any{"error": map[string]any{
		"code":    "INVALID_ARGUMENT",
		"status":  http.StatusBadRequest,
		"message": "name must not be empty",
		"details": []any{map[string]any{
			"@type":           "type.googleapis.com/google.rpc.BadRequest",
			"fieldViolations": []any{map[string]any{"field": "name", "description": "must not be empty"}},
		}},
	}}
	return []errorResponse{
		{name: "BadRequest", status: "400", when: always, response: response{
			Description: "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE: a malformed body, path or query, or values the service refuses; details hold a google.rpc.BadRequest naming the fields.",
			Content:     errorContent(badRequestExample),
		}},
		{name: "Unauthorized", status: "401", when: withBearer, response: response{
			Description: "UNAUTHENTICATED: the bearer token is missing, malformed, expired or not signed by a configured key.",
			Headers:     map[string]header{"WWW-Authenticate": {Description: "An RFC 6750 Bearer challenge.", Schema: &schema{Type: "string"}}},
			Content:     errorContent(nil),
		}},
		{name: "Forbidden", status: "403", when: always, response: response{
			Description: "PERMISSION_DENIED: the caller may not do this.",
			Content:     errorContent(nil),
		}},
		{name: "NotFound", status: "404", when: always, response: response{
			Description: "NOT_FOUND: a resource the request names does not exist.",
			Content:     errorContent(nil),
		}},
		{name: "Conflict", status: "409", when: always, response: response{
			Description: "ALREADY_EXISTS or ABORTED: the request conflicts with the current state.",
			Content:     errorContent(nil),
		}},
		{name: "PayloadTooLarge", status: "413", when: withBody, response: response{
			Description: "The body is longer than the gateway accepts.",
			Content:     errorContent(nil),
		}},
		{name: "UnsupportedMediaType", status: "415", when: withBody, response: response{
			Description: "The Content-Type is not application/json.",
			Content:     errorContent(nil),
		}},
		{name: "TooManyRequests", status: "429", when: always, response: response{
			Description: "RESOURCE_EXHAUSTED: a rate limit of the gateway or of the service refused the request.",
			Headers:     map[string]header{"Retry-After": retryAfter},
			Content:     errorContent(nil),
		}},
		{name: "InternalError", status: "500", when: always, response: response{
			Description: "INTERNAL, UNKNOWN or DATA_LOSS: the service failed.",
			Content:     errorContent(nil),
		}},
		{name: "Unavailable", status: "503", when: always, response: response{
			Description: "UNAVAILABLE: no instance of the service could answer.",
			Headers:     map[string]header{"Retry-After": retryAfter},
			Content:     errorContent(nil),
		}},
		{name: "GatewayTimeout", status: "504", when: always, response: response{
			Description: "DEADLINE_EXCEEDED: the service did not answer in time.",
			Content:     errorContent(nil),
		}},
		{name: "Error", status: "default", when: always, response: response{
			Description: "Any other error, e.g. 499 CANCELLED or 501 UNIMPLEMENTED.",
			Content:     errorContent(nil),
		}},
	}
}

// errorContent returns the content of an error answer, with an example
// when it is not nil.
func errorContent(example any) map[string]mediaType {
	return map[string]mediaType{jsonType: {Schema: refTo(errorSchema), Example: example}}
}

// responseRef returns a $ref to the component response name.
func responseRef(name string) response {
	return response{Ref: "#/components/responses/" + name}
}
