// Package gateway is a generic REST/JSON edge for gRPC services: a
// [Gateway] is an http.Handler that serves the routes of the
// google.api.http annotations of its backends' protos, transcoding JSON
// requests to gRPC calls (through kit clients, so discovery, balancing,
// retries and breakers apply) and their answers back to JSON.
//
// # Routes learned at run time
//
// A [Learner] follows the services of Consul's catalog: for each service
// with healthy instances it learns the API through the gRPC server
// reflection of an instance (kit services serve it with server.reflection,
// as the local stacks run them) and gives it to the gateway with
// [Gateway.SetAPI]. A service is served within seconds of passing its
// health check, with no gateway change or restart. It learns again when
// the fingerprint of the protos its instances publish in Consul changes
// (kit.MetaAPI). A service without a healthy instance keeps its routes,
// answered 503 (unavailable) as before, until it leaves the catalog; then
// its routes go. A route that a backend serves already (same HTTP method
// and path template, whatever the variables' names) is refused for a later
// backend and logged, never overridden, and so is a later backend's route
// that would take some of an earlier backend's requests (an overlapping
// template: "/v1/users/me" or "/v1/users/{id}:export" against
// "/v1/users/{id}"); a service without annotations has
// no route, and one that cannot be learnt (no reflection) is logged once
// and tried again with backoff.
//
// # Transcoding
//
// As the annotation rules define (google/api/http.proto): path variables
// (nested fields "{a.b}", multi-segment "{name=shelves/*/books/*}", a
// ":verb" suffix), query parameters for every field the path and body do
// not bind ("?a.b=1&tags=x&tags=y"; values in protojson's string form:
// enums by name or number, 64-bit integers, timestamps, durations,
// wrappers), body "*" (the whole request) or "field", response_body, and
// additional_bindings. A server-streaming method answers newline-delimited
// JSON (application/x-ndjson), one message per line; an error after the
// first line is a last line in the error shape below. Client and
// bidirectional streams have no route.
//
// Bodies are protojson: answers use the proto field names (snake_case,
// like the query parameters) and carry every field, empty ones included.
// Requests may use the proto or the lowerCamelCase names; unknown fields,
// unknown or repeated query parameters, wrong types, a body that is not
// JSON and a Content-Type other than application/json are refused (400,
// 400, 400, 400, 415), and so is a body longer than [Config.MaxBodyBytes]
// (413). A value in both the path and the body must agree (else 400).
//
// A backend chooses a 2xx status other than 200 and a Location through
// its response header metadata ([HTTPCodeHeader] "201", [LocationHeader]
// "/v1/users/42"). GET routes answer HEAD too. Another method on a route's
// path is answered 405 with Allow, any other path 404. GET /openapi.json
// is the OpenAPI 3 document of the routes served (request and answer
// schemas, which routes need a token), generated from the same
// descriptors.
//
// # Errors
//
// Every error is JSON:
//
//	{"error": {"code": "NOT_FOUND", "status": 404, "message": "user \"x\" not found", "details": []}}
//
// code is the google.rpc.Code name, status repeats the HTTP status (see
// [HTTPStatus] for the mapping of gRPC codes), and details are the
// google.rpc error details in protojson, each with its "@type" (a
// BadRequest naming the offending field, a RetryInfo on 429). A 429 or 503
// with a RetryInfo has a Retry-After header (whole seconds, rounded up).
// Server-side failures (5xx) of a backend are logged and answered with a
// generic message, so that backend internals do not reach clients.
//
// # Auth
//
// Which methods are public is declared once, by the service: its
// auth.public_methods, which kit servers publish in their registration
// (kit.MetaPublic) and the gateway follows (a method is public when every
// healthy instance says so). A public route is served without a token, and
// its backend call carries none (never the gateway's own identity); a
// valid token sent anyway is passed on. Every other route needs
// "Authorization: Bearer <jwt>", verified by kit/middleware/auth with the
// keys of [Config.Auth] and passed on to the service, which checks it
// again (and decides what the caller may do: 403). A missing, malformed,
// expired or wrongly signed token is answered 401 with an RFC 6750
// WWW-Authenticate challenge. [Config.Routes] can ask for a token on a
// method the service declares public, never the reverse.
//
// # Limits and policies
//
// Every request first takes a token from the bucket of its client IP and
// from a global bucket (golang.org/x/time/rate); then, when its route has
// limits in [Config.Routes], from the route's bucket and the route's
// bucket of its client. An empty bucket answers 429 with Retry-After at
// once. Each backend call has a deadline of [Config.BackendTimeout] (or the
// route's timeout) and ends when the client goes away. A write that is not
// NO_SIDE_EFFECTS carries a request id kept across kit's retries (the
// client's Idempotency-Key header, else a new one), so that a service that
// records it answers a repeat with the first result. [Config.CORS] lets
// pages of other origins call. [Gateway.SetConfig] changes all of it while
// the gateway serves.
package gateway
