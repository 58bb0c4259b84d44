// Package gateway is the REST/JSON edge of the example services: a
// [Gateway] is an http.Handler that turns HTTP requests into calls to the
// greeter and user services (through kit clients, so discovery, balancing,
// retries and breakers apply) and their answers back into JSON.
//
// # Routes
//
//	GET    /v1/hello/{name}   greeter SayHello{name}                       200
//	POST   /v1/users          user CreateUser, body CreateUserRequest      201, Location: /v1/users/{id}
//	GET    /v1/users          user ListUsers{page_size, page_token}        200
//	GET    /v1/users/{id}     user GetUser{id}                             200
//	PATCH  /v1/users/{id}     user UpdateUser{id}, body {name?, email?}    200
//	DELETE /v1/users/{id}     user DeleteUser{id}                          200, {}
//	GET    /openapi.json      the OpenAPI 3 document of these routes       200
//
// GET routes answer HEAD too. Another method on a route's path is answered
// 405 with Allow, any other path 404, both in the error shape below.
//
// # Bodies
//
// Request and response bodies are the protojson form of the proto messages
// (greeter.v1 and user.v1). Answers use the proto field names (snake_case,
// like the query parameters) and carry every field, empty ones included:
//
//	{"user": {"id": "...", "name": "Ada", "email": "ada@example.com",
//	          "create_time": "2025-01-02T03:04:05Z", "update_time": "..."}}
//
// Requests may use the proto or the lowerCamelCase names; unknown fields,
// unknown or repeated query parameters, a body that is not JSON and a
// Content-Type other than application/json are refused (400, 400, 400, 415),
// and so is a body longer than [Config.MaxBodyBytes] (413).
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
// BadRequest naming the offending fields, a RetryInfo on 429). A 429 or
// 503 with a RetryInfo has a Retry-After header (whole seconds, rounded
// up). Server-side failures (5xx) of a backend are logged and answered with
// a generic message, so that backend internals do not reach clients.
//
// # Auth
//
// Writes (POST, PATCH, DELETE) need "Authorization: Bearer <jwt>"; the token
// is verified by kit/middleware/auth's Authenticator with the keys of
// [Config.Auth] (HS256 with a shared secret, or public keys). A missing,
// malformed, expired or wrongly signed token is answered 401 with an RFC
// 6750 WWW-Authenticate challenge. Reads are public.
//
// # Limits
//
// Every request, whatever its route, first takes a token from the bucket
// of its client IP and from a global bucket (golang.org/x/time/rate); when
// either is empty it is answered 429 with Retry-After at once. Each backend
// call has a deadline of [Config.BackendTimeout] and ends when the client
// goes away. [Gateway.SetConfig] changes limits, auth and timeouts while
// the gateway serves.
package gateway
