package openapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestRichMessage: every kind of field, the well-known types, nesting,
// recursion and oneofs map to the schemas of protojson; parameters and
// bodies follow the google.api.http rules.
func TestRichMessage(t *testing.T) {
	doc := build(t, richOps(t))

	checks := []struct {
		pointer string // of a value in the document
		want    string // JSON
	}{
		{"/components/schemas/test.v1.Rich/properties", `{
			"name":       {"type": "string", "description": "The name of the thing."},
			"i32":        {"type": "integer", "format": "int32"},
			"s32":        {"type": "integer", "format": "int32"},
			"u32":        {"type": "integer", "format": "uint32"},
			"i64":        {"type": "string", "format": "int64"},
			"sf64":       {"type": "string", "format": "int64"},
			"u64":        {"type": "string", "format": "uint64"},
			"f64":        {"type": "string", "format": "uint64"},
			"ratio":      {"type": "number", "format": "float"},
			"score":      {"type": "number", "format": "double"},
			"flag":       {"type": "boolean"},
			"blob":       {"type": "string", "format": "byte"},
			"color":      {"$ref": "#/components/schemas/test.v1.Rich.Color"},
			"tags":       {"type": "array", "items": {"type": "string"}},
			"colors":     {"type": "array", "items": {"$ref": "#/components/schemas/test.v1.Rich.Color"}},
			"inners":     {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/test.v1.Rich.Inner"}},
			"totals":     {"type": "object", "additionalProperties": {"type": "string", "format": "int64"}},
			"inner":      {"allOf": [{"$ref": "#/components/schemas/test.v1.Rich.Inner"}], "nullable": true},
			"child":      {"allOf": [{"$ref": "#/components/schemas/test.v1.Rich"}], "nullable": true},
			"children":   {"type": "array", "items": {"$ref": "#/components/schemas/test.v1.Rich"}},
			"when":       {"type": "string", "format": "date-time", "nullable": true},
			"wait":       {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "nullable": true,
			              "description": "A duration in seconds with an \"s\" suffix, e.g. \"1.5s\"."},
			"nick":       {"type": "string", "nullable": true},
			"maybe_big":  {"type": "string", "format": "int64", "nullable": true},
			"maybe_flag": {"type": "boolean", "nullable": true},
			"attrs":      {"type": "object", "additionalProperties": {"nullable": true}, "nullable": true},
			"anything":   {"nullable": true},
			"list":       {"type": "array", "items": {"nullable": true}, "nullable": true},
			"extra":      {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}},
			              "additionalProperties": {"nullable": true}, "nullable": true,
			              "description": "A message of any type: \"@type\" names it, the other members are its fields."},
			"mask":       {"type": "string", "nullable": true, "description": "Field paths in lowerCamelCase, separated by commas."},
			"nothing":    {"type": "object", "nullable": true},
			"null_value": {"nullable": true, "description": "Always null (google.protobuf.NullValue)."},
			"maybe_name": {"type": "string"},
			"times":      {"type": "array", "items": {"type": "string", "format": "date-time"}},
			"text":       {"type": "string"},
			"number":     {"type": "integer", "format": "int32"},
			"nested":     {"allOf": [{"$ref": "#/components/schemas/test.v1.Rich.Inner"}], "nullable": true}
		}`},
		{"/components/schemas/test.v1.Rich/description",
			`"test.v1.Rich\n\nRich has a field of every kind.\n\nOneof choice: at most one of text, number, nested is set."`},
		{"/components/schemas/test.v1.Rich.Color",
			`{"type": "string", "description": "test.v1.Rich.Color", "enum": ["COLOR_UNSPECIFIED", "RED", "GREEN"]}`},
		{"/components/schemas/test.v1.Rich.Inner/properties/parent",
			`{"allOf": [{"$ref": "#/components/schemas/test.v1.Rich"}], "nullable": true}`},

		// No body: the fields outside the path are query parameters.
		{"/paths/~1v1~1rich~1{inner.label}/get/parameters/0",
			`{"name": "inner.label", "in": "path", "required": true, "schema": {"type": "string"}}`},
		{"/paths/~1v1~1rich~1{inner.label}/get/parameters/14",
			`{"name": "tags", "in": "query", "style": "form", "explode": true, "schema": {"type": "array", "items": {"type": "string"}}}`},
		{"/paths/~1v1~1rich~1{i64}:watch/get/parameters/0",
			`{"name": "i64", "in": "path", "required": true, "schema": {"type": "string", "format": "int64"}}`},

		// body "field": its schema; the path sets a field inside it, the
		// other fields are query parameters.
		{"/paths/~1v1~1parents~1{rich.name}/put/requestBody", `{
			"description": "The path sets name.",
			"required": true,
			"content": {"application/json": {"schema": {"$ref": "#/components/schemas/test.v1.Rich"}}}
		}`},
		// body "*" with a nested path field: the whole message, said in the description.
		{"/paths/~1v1~1parents~1{rich.name}:copy/post/requestBody", `{
			"description": "The path sets rich.name.",
			"required": true,
			"content": {"application/json": {"schema": {"$ref": "#/components/schemas/test.v1.Parent"}}}
		}`},
		// response_body and server streaming.
		{"/paths/~1v1~1rich~1{i64}:watch/get/responses/200", `{
			"description": "A stream of newline-delimited JSON, one line per message: the inner field of test.v1.Rich.",
			"content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/test.v1.Rich.Inner"}}}
		}`},
		{"/paths/~1v1~1rich~1{i64}:watch/get/security", `[]`},
		{"/paths/~1v1~1rich~1{name}:publish/post/security", `[{"bearer": []}]`},
	}
	for _, c := range checks {
		if diff := cmp.Diff(jsonOf(t, c.want), at(t, doc, c.pointer)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.pointer, diff)
		}
	}

	wantQuery := []string{
		"path:inner.label",
		"query:name", "query:i32", "query:s32", "query:u32", "query:i64", "query:sf64", "query:u64", "query:f64",
		"query:ratio", "query:score", "query:flag", "query:blob", "query:color", "query:tags", "query:colors",
		// inners and totals: maps; inner.parent and child: a Rich inside a
		// Rich; children: repeated messages; attrs to nothing: not scalars.
		"query:inner.count",
		"query:when", "query:wait", "query:nick", "query:maybe_big", "query:maybe_flag", "query:mask",
		"query:maybe_name", "query:times", "query:text", "query:number", "query:nested.label", "query:nested.count",
	}
	if diff := cmp.Diff(wantQuery, parameterNames(t, doc, "/paths/~1v1~1rich~1{inner.label}/get")); diff != "" {
		t.Errorf("GET /v1/rich/{inner.label} parameters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"path:rich.name", "query:id"}, parameterNames(t, doc, "/paths/~1v1~1parents~1{rich.name}/put")); diff != "" {
		t.Errorf("PUT /v1/parents/{rich.name} parameters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"path:rich.name"}, parameterNames(t, doc, "/paths/~1v1~1parents~1{rich.name}:copy/post")); diff != "" {
		t.Errorf("POST /v1/parents/{rich.name}:copy parameters (-want +got):\n%s", diff)
	}

	// body "*" with a top-level path field: the message without it.
	publish := at(t, doc, "/paths/~1v1~1rich~1{name}:publish/post/requestBody/content/application~1json/schema").(map[string]any)
	props := publish["properties"].(map[string]any)
	if _, ok := props["name"]; ok || len(props) != 36 {
		t.Errorf("body of publish has %d properties (want the 37 of Rich but name): %v", len(props), props)
	}
	if desc := publish["description"].(string); !strings.HasPrefix(desc, "test.v1.Rich without the fields that the path sets: name.") {
		t.Errorf("body of publish: description %q", desc)
	}

	// PURGE has no place in OpenAPI 3.0: left out.
	if has(doc, "/paths/~1v1~1parents~1{id}") {
		t.Error("the PURGE operation is in the document")
	}
}

// TestRichMessageFitsProtojson: a Rich with every field set, as the
// gateway writes it (proto names, every field, unset messages as null),
// fits the schema.
func TestRichMessageFitsProtojson(t *testing.T) {
	ops := richOps(t)
	b, err := Build(Info{Title: "test", Version: "1"}, ops)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	msg := dynamicpb.NewMessage(ops[0].Input)
	in := `{
		"name": "n", "i32": -1, "s32": -2, "u32": 3, "i64": "-4", "sf64": "5", "u64": "6", "f64": "7",
		"ratio": 0.5, "score": 1.25, "flag": true, "blob": "aGk=", "color": "RED",
		"tags": ["a", "b"], "colors": ["GREEN", "RED"],
		"inners": {"x": {"label": "l", "count": "2", "parent": {"name": "p"}}}, "totals": {"1": "2"},
		"inner": {"label": "in"}, "child": {"child": {}}, "children": [{"name": "c"}],
		"when": "2025-01-02T03:04:05Z", "wait": "1.5s", "nick": "nick", "maybe_big": "9", "maybe_flag": false,
		"attrs": {"k": [1, "two", null, {"x": true}]}, "anything": null, "list": [null, 1],
		"extra": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"},
		"mask": "name,inner.label", "nothing": {}, "null_value": null, "maybe_name": "m",
		"times": ["2025-01-02T03:04:05.5Z"], "nested": {"count": "3"}
	}`
	if err := protojson.Unmarshal([]byte(in), msg); err != nil {
		t.Fatalf("the test's message: %v", err)
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var value any
	if err := json.Unmarshal(out, &value); err != nil {
		t.Fatal(err)
	}
	rich := doc.Components.Schemas["test.v1.Rich"].Value
	if err := rich.VisitJSON(value); err != nil {
		t.Errorf("%s does not fit test.v1.Rich: %v", out, err)
	}
	// Wrong types fail, so that the check above can fail.
	for _, bad := range []string{`{"i64": 4}`, `{"color": "BLUE"}`, `{"tags": "a"}`, `{"when": 1}`, `{"inner": 1}`} {
		if err := rich.VisitJSON(jsonOf(t, bad)); err == nil {
			t.Errorf("%s fits test.v1.Rich", bad)
		}
	}
}

// TestExampleAndRichTogether: one document of many services validates, with
// every service a tag and the components of both.
func TestExampleAndRichTogether(t *testing.T) {
	doc := build(t, append(exampleOps(t), richOps(t)...))
	var tags []string
	for _, tag := range at(t, doc, "/tags").([]any) {
		tags = append(tags, tag.(map[string]any)["name"].(string))
	}
	want := []string{"greeter.v1.GreeterService", "test.v1.RichService", "user.v1.UserService"}
	if !slices.Equal(tags, want) {
		t.Errorf("tags %v, want %v", tags, want)
	}
	for _, name := range []string{"user.v1.User", "test.v1.Rich", "Error", "ErrorDetail"} {
		if !has(doc, "/components/schemas/"+name) {
			t.Errorf("no schema %s", name)
		}
	}
}
