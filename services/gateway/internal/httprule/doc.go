// Package httprule is the pure core of the gateway's REST routing: it parses
// the path templates of google.api.http annotations (google/api/http.proto),
// matches request paths against them, chooses among the routes of many
// services, and sets request message fields from the strings that a path or
// a query carries. It does no I/O and has no state beyond the values it
// returns, so the gateway can rebuild a [Router] whenever the set of routes
// learned from the services changes, and swap it in atomically.
//
// # Templates
//
// [ParseTemplate] accepts the grammar of http.proto:
//
//	Template  = "/" Segments [ Verb ] ;
//	Segments  = Segment { "/" Segment } ;
//	Segment   = "*" | "**" | LITERAL | Variable ;
//	Variable  = "{" FieldPath [ "=" Segments ] "}" ;
//	FieldPath = IDENT { "." IDENT } ;
//	Verb      = ":" LITERAL ;
//
// plus the template "/" alone, which matches only the path "/". A LITERAL is
// made of RFC 3986 unreserved characters (letters, digits, "-", ".", "_",
// "~") and percent-encoded octets, so it never contains "/", ":", "{" or
// "*" and the grammar has no ambiguity. "**" may only be the last segment
// (before the verb); variables do not nest; {var} means {var=*}; a field
// path may be bound once, and not both as a whole and in part ({a} and
// {a.b}). Templates are at most [MaxTemplateLen] bytes.
//
// # Matching
//
// A path is matched in its escaped form (r.URL.EscapedPath()). It is split
// at "/" into segments; "/" alone has no segment, and "/v1/" has two, "v1"
// and "". "*" matches one non-empty segment, "**" the rest of the path
// (zero or more segments, empty ones included), a literal a segment equal to
// it once both are percent-decoded (so "%7E" matches "~"). A path with a
// malformed percent-encoding ("%", "%4", "%zz") matches nothing.
//
// The value bound to a variable of one segment ({id}, {id=*}) is fully
// percent-decoded. A variable of several segments ({name=shelves/*},
// {path=**}) is decoded except for "%2F" and "%2f", which are kept as "%2F",
// so that an encoded slash inside a segment stays distinct from the
// separators; a value cannot tell "%2F" from "%252F" apart, as in
// grpc-gateway.
//
// A verb is recognised as grpc-gateway does: a template with verb V matches
// a path whose last segment ends with ":V" after at least one character
// (":V" alone is not a verb), the segment being matched without its ":V". A
// template without a verb treats a colon like any other character, so
// "/v1/{name}" matches "/v1/a:b" with name "a:b". A colon written "%3A" is
// never a verb separator; it is data.
//
// # Precedence
//
// When several templates match a path, the most specific wins: their
// segments are compared from the left, a literal before "*", "*" before the
// end of the template, the end before "**" (so "/v1/a" wins over
// "/v1/a/**" for "/v1/a"); a variable counts as the segments of its pattern.
// When the segments compare equal, a template with a verb wins over one
// without ("/v1/{name}:cancel" over "/v1/{name}" for "/v1/x:cancel").
// Two routes of one method whose templates compare equal and have the same
// verb match the same paths: [Router.Add] refuses the second with
// [ErrConflict].
//
// # Fields
//
// [SetField] and [SetQuery] set the fields of a request message from path
// bindings and query parameters, with the string forms of protojson:
// numbers in decimal, enums by name or number, bytes in base64, the
// well-known wrappers, Timestamp, Duration and FieldMask as their JSON
// strings. Their errors are [*FieldError], naming the field, for a 400 with
// a google.rpc.BadRequest.
package httprule
