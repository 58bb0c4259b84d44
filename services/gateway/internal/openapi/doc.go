// Package openapi writes the OpenAPI 3.0.3 document of the gateway from the
// routes it learned: [Build] takes one [Operation] per route (an HTTP method
// and path bound to a gRPC method by its google.api.http annotation, with
// the request and response message descriptors) and returns the JSON the
// gateway serves at /openapi.json.
//
// # Schemas
//
// Bodies are described as protojson writes them with proto field names
// (UseProtoNames) and every field (EmitUnpopulated). Each message is a
// schema in components.schemas keyed by its full name ("user.v1.User"),
// and so is each enum ("pkg.Kind": a string with the value names); fields
// refer to them with $ref, so recursive messages are fine. The scalars
// follow the protojson mapping:
//
//	int32, sint32, sfixed32        integer, format int32
//	uint32, fixed32                integer, format uint32
//	int64, sint64, sfixed64        string, format int64
//	uint64, fixed64                string, format uint64
//	float, double                  number, format float or double
//	bool                           boolean
//	string                         string
//	bytes                          string, format byte (base64)
//	enum                           string, one of the value names
//	repeated T                     array of T
//	map<K, V>                      object whose additionalProperties are V
//
// The well-known types are written inline, as protojson writes them:
// google.protobuf.Timestamp is a string of format date-time, Duration a
// string such as "1.5s", the wrappers (StringValue, Int64Value, ...) their
// scalar, Struct an object, Value any JSON value ({"nullable": true}),
// ListValue an array, Any an object with "@type", FieldMask a string,
// Empty an object, and NullValue null.
//
// A singular message field is nullable, since protojson writes an unset
// one as null: an inline schema (a well-known type) gets nullable: true, a
// $ref goes into {"allOf": [{"$ref": ...}], "nullable": true}, as OpenAPI
// 3.0 allows nothing beside a $ref. The fields of a oneof are plain
// properties; the message's description names the oneof and its fields, of
// which at most one is set. Leading comments of messages and fields become
// descriptions when the descriptors carry source information.
//
// # Parameters and bodies
//
// Path variables ("{id}", "{book.name}") are required parameters whose
// schema follows the field's type. A route with no body takes every other
// leaf field of its request message as an optional query parameter: a
// scalar, an enum, or a well-known type written as a scalar (Timestamp,
// Duration, the wrappers, FieldMask); nested fields as "a.b", at most
// [MaxQueryDepth] names deep and never inside a field of a message that
// holds it (a recursive Node's "child.name" is left out, so that the list
// ends), and no more than the first 1000 fields a walk of the nested
// messages looks at (messages nesting wide messages would otherwise give
// thousands of parameters); repeated leaves as arrays (style form, explode: ?tag=a&tag=b).
// Maps, repeated messages, Struct, Value, ListValue, Any and Empty are not
// query parameters. A route whose body is one field ("book") also takes the
// fields outside the path and that body field as query parameters, as the
// google.api.http rules define; a route whose body is "*" takes none.
//
// A body of "*" is the request message without its path fields: a $ref to
// the message when no path variable names one of its top-level fields,
// otherwise an inline object of the message's other fields. A nested path
// field ("book.name") stays in the body's schema and the request body's
// description says that the path sets it.
//
// # Answers
//
// Each operation answers 200 with the response message (or its
// response_body field), as application/json, or for a server-streaming
// method as application/x-ndjson, one message per line. Errors are shared
// responses in components.responses whose body is the gateway's error
// shape, the "Error" schema:
//
//	{"error": {"code": "NOT_FOUND", "status": 404, "message": "...", "details": [...]}}
//
// Every operation lists 400 (with a google.rpc.BadRequest in details), 403,
// 404, 409, 429 (with Retry-After), 500, 503 and 504, and a default; an
// operation with a body adds 413 and 415; one that needs a bearer token
// adds 401 (with WWW-Authenticate) and says security: [{"bearer": []}],
// a public one security: [].
//
// # Limits
//
// OpenAPI 3.0 has a fixed set of methods: an operation whose method is not
// GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH or TRACE (a google.api.http
// custom method such as "PURGE") is checked like the others and then left
// out of the document. Two descriptors of one full name (two versions of a
// message served by two services) share one schema, the first one met in
// the order of the operations. A message or enum without a package whose
// name is one of this package's own schemas ("Error", "ErrorDetail") is an
// error.
package openapi
