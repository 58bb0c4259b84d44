package openapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// exampleOps returns the operations of greeter's and user's annotations
// (the user routes need a token), and greeter's StreamHellos, which has
// no annotation, as a server-streaming route.
func exampleOps(t *testing.T) []Operation {
	t.Helper()
	ops := annotatedOps(t, map[string]bool{"user.v1.UserService": true},
		greeterv1.File_greeter_v1_greeter_proto, userv1.File_user_v1_user_proto)
	stream := greeterv1.File_greeter_v1_greeter_proto.Services().Get(0).Methods().ByName("StreamHellos")
	return append(ops, Operation{
		Method:          http.MethodGet,
		Path:            "/v1/hello/{name}:stream",
		PathParams:      []string{"name"},
		Input:           stream.Input(),
		Output:          stream.Output(),
		ServerStreaming: true,
		Service:         "greeter.v1.GreeterService",
		RPC:             "/greeter.v1.GreeterService/StreamHellos",
		OperationID:     "greeter.v1.GreeterService.StreamHellos",
	})
}

// TestExampleServices: the document of today's routes, learned from the
// annotations, has the routes, their security, parameters, bodies and
// answers, and the messages' schemas.
func TestExampleServices(t *testing.T) {
	doc := build(t, exampleOps(t))

	var routes []string
	for path, item := range at(t, doc, "/paths").(map[string]any) {
		for method := range item.(map[string]any) {
			routes = append(routes, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(routes)
	wantRoutes := []string{
		"DELETE /v1/users/{id}",
		"GET /v1/hello/{name}",
		"GET /v1/hello/{name}:stream",
		"GET /v1/users",
		"GET /v1/users/{id}",
		"PATCH /v1/users/{id}",
		"POST /v1/users",
	}
	if diff := cmp.Diff(wantRoutes, routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}

	checks := []struct {
		pointer string // of a value in the document
		want    string // JSON
	}{
		{"/tags", `[{"name": "greeter.v1.GreeterService"}, {"name": "user.v1.UserService"}]`},
		{"/components/schemas/user.v1.User", `{
			"type": "object",
			"description": "user.v1.User",
			"properties": {
				"id": {"type": "string"},
				"name": {"type": "string"},
				"email": {"type": "string"},
				"create_time": {"type": "string", "format": "date-time", "nullable": true},
				"update_time": {"type": "string", "format": "date-time", "nullable": true}
			}
		}`},
		{"/components/schemas/user.v1.ListUsersResponse/properties", `{
			"users": {"type": "array", "items": {"$ref": "#/components/schemas/user.v1.User"}},
			"next_page_token": {"type": "string"}
		}`},
		{"/components/schemas/user.v1.GetUserResponse/properties/user",
			`{"allOf": [{"$ref": "#/components/schemas/user.v1.User"}], "nullable": true}`},
		{"/components/schemas/user.v1.DeleteUserResponse", `{"type": "object", "description": "user.v1.DeleteUserResponse"}`},
		{"/components/securitySchemes/bearer/scheme", `"bearer"`},
		{"/components/securitySchemes/bearer/bearerFormat", `"JWT"`},

		// Security: the greeter is public, the user service needs a token.
		{"/paths/~1v1~1hello~1{name}/get/security", `[]`},
		{"/paths/~1v1~1users~1{id}/get/security", `[{"bearer": []}]`},
		{"/paths/~1v1~1users/post/security", `[{"bearer": []}]`},

		{"/paths/~1v1~1users/get/parameters", `[
			{"name": "page_size", "in": "query", "schema": {"type": "integer", "format": "int32"}},
			{"name": "page_token", "in": "query", "schema": {"type": "string"}}
		]`},
		{"/paths/~1v1~1users~1{id}/delete/parameters", `[
			{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}
		]`},
		// SayHello: name from the path, the proto3 optional user_id from the query.
		{"/paths/~1v1~1hello~1{name}/get/parameters", `[
			{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
			{"name": "user_id", "in": "query", "schema": {"type": "string"}}
		]`},

		{"/paths/~1v1~1users/post/requestBody", `{
			"required": true,
			"content": {"application/json": {"schema": {"$ref": "#/components/schemas/user.v1.CreateUserRequest"}}}
		}`},
		// body "*" with the path's id: the other fields.
		{"/paths/~1v1~1users~1{id}/patch/requestBody/content/application~1json/schema", `{
			"type": "object",
			"description": "user.v1.UpdateUserRequest without the fields that the path sets: id.",
			"properties": {"name": {"type": "string"}, "email": {"type": "string"}}
		}`},

		{"/paths/~1v1~1users~1{id}/get/responses/200", `{
			"description": "The answer: user.v1.GetUserResponse.",
			"content": {"application/json": {"schema": {"$ref": "#/components/schemas/user.v1.GetUserResponse"}}}
		}`},
		{"/paths/~1v1~1hello~1{name}:stream/get/responses/200/content", `{
			"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/greeter.v1.StreamHellosResponse"}}
		}`},
		{"/paths/~1v1~1hello~1{name}:stream/get/parameters/1", `{"name": "count", "in": "query", "schema": {"type": "integer", "format": "int32"}}`},
		{"/paths/~1v1~1users~1{id}/get/responses/404", `{"$ref": "#/components/responses/NotFound"}`},
		{"/components/responses/TooManyRequests/headers/Retry-After/schema", `{"type": "integer"}`},
		{"/components/responses/Unauthorized/headers/WWW-Authenticate/schema", `{"type": "string"}`},
	}
	for _, c := range checks {
		if diff := cmp.Diff(jsonOf(t, c.want), at(t, doc, c.pointer)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.pointer, diff)
		}
	}

	// The error answers: 401 only with a token, 413 and 415 only with a body.
	for _, c := range []struct {
		pointer string
		want    []string
	}{
		{"/paths/~1v1~1hello~1{name}/get/responses", []string{"200", "400", "403", "404", "409", "429", "500", "503", "504", "default"}},
		{"/paths/~1v1~1users~1{id}/get/responses", []string{"200", "400", "401", "403", "404", "409", "429", "500", "503", "504", "default"}},
		{"/paths/~1v1~1users/post/responses", []string{"200", "400", "401", "403", "404", "409", "413", "415", "429", "500", "503", "504", "default"}},
	} {
		var got []string
		for status := range at(t, doc, c.pointer).(map[string]any) {
			got = append(got, status)
		}
		slices.Sort(got)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.pointer, diff)
		}
	}
	if has(doc, "/paths/~1v1~1users~1{id}/get/requestBody") {
		t.Error("GET /v1/users/{id} has a request body")
	}
}

// TestSchemasFitProtojson: what the gateway writes (protojson with proto
// names and every field) and the gateway's error bodies fit the schemas
// of the document.
func TestSchemasFitProtojson(t *testing.T) {
	b, err := Build(Info{Title: "test", Version: "1"}, exampleOps(t))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	answer := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	now := timestamppb.Now()
	for _, c := range []struct {
		schema string
		msg    proto.Message
	}{
		{"user.v1.GetUserResponse", &userv1.GetUserResponse{User: &userv1.User{Id: "u1", Name: "Ada", Email: "ada@example.com", CreateTime: now}}},
		{"user.v1.GetUserResponse", &userv1.GetUserResponse{}}, // user: null
		{"user.v1.ListUsersResponse", &userv1.ListUsersResponse{Users: []*userv1.User{{Id: "u1"}, {Id: "u2", UpdateTime: now}}, NextPageToken: "t"}},
		{"user.v1.DeleteUserResponse", &userv1.DeleteUserResponse{}},
		{"greeter.v1.StreamHellosResponse", &greeterv1.StreamHellosResponse{Message: "Hello", Sequence: 2}},
	} {
		checkFits(t, doc, c.schema, answer.Format(c.msg))
	}
	for _, body := range []string{
		`{"error": {"code": "NOT_FOUND", "status": 404, "message": "user \"x\" not found", "details": []}}`,
		`{"error": {"code": "INVALID_ARGUMENT", "status": 400, "message": "name empty", "details": [
			{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "name", "description": "empty"}]}]}}`,
	} {
		checkFits(t, doc, "Error", body)
	}
	// And a body that does not fit fails, so that the checks above can fail.
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(jsonOf(t, `{"error": {"code": "NOPE"}}`)); err == nil {
		t.Error("a malformed error body fits the Error schema")
	}
}

// checkFits fails t unless the JSON text fits the component schema name of
// doc.
func checkFits(t *testing.T, doc *openapi3.T, name, text string) {
	t.Helper()
	ref, ok := doc.Components.Schemas[name]
	if !ok {
		t.Fatalf("no schema %s", name)
	}
	if err := ref.Value.VisitJSON(jsonOf(t, text)); err != nil {
		t.Errorf("%s does not fit schema %s: %v", text, name, err)
	}
}

// TestDeterministic: the same operations give the same bytes, whatever the
// order in which maps are walked.
func TestDeterministic(t *testing.T) {
	ops := append(exampleOps(t), richOps(t)...)
	first, err := Build(Info{Title: "test", Version: "1"}, ops)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := Build(Info{Title: "test", Version: "1"}, ops)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("two builds differ:\n%s", cmp.Diff(string(first), string(again)))
		}
	}
	// The keys of every object are sorted (json.Marshal of maps) and the
	// operations' parameters keep their order: checked on a decoded copy.
	var doc map[string]any
	if err := json.Unmarshal(first, &doc); err != nil {
		t.Fatal(err)
	}
	if got := parameterNames(t, doc, "/paths/~1v1~1users/get"); !slices.Equal(got, []string{"query:page_size", "query:page_token"}) {
		t.Errorf("ListUsers parameters %v", got)
	}
}
