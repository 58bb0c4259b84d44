package openapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/protoutil"
	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// build builds the document of ops, checks it against the OpenAPI 3
// schema with kin-openapi, and returns it decoded.
func build(t *testing.T, ops []Operation) map[string]any {
	t.Helper()
	b, err := Build(Info{Title: "test", Version: "1"}, ops)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	validate(t, b)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// validate fails t unless doc is a valid OpenAPI 3 document.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	loaded, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := loaded.Validate(t.Context()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
}

// at returns the value at a JSON pointer in doc ("/paths/~1v1~1users/get"),
// failing t when there is none.
func at(t *testing.T, doc any, pointer string) any {
	t.Helper()
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				t.Fatalf("%s: no %q", pointer, tok)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(c) {
				t.Fatalf("%s: no element %q", pointer, tok)
			}
			cur = c[i]
		default:
			t.Fatalf("%s: %q is inside a %T", pointer, tok, cur)
		}
	}
	return cur
}

// has reports whether doc has a value at pointer.
func has(doc any, pointer string) bool {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]; !ok {
			return false
		}
	}
	return true
}

// jsonOf decodes a JSON text written in a test.
func jsonOf(t *testing.T, text string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("bad JSON in the test: %v\n%s", err, text)
	}
	return v
}

// parameterNames returns the names of the parameters of the operation at
// pointer, each as "in:name".
func parameterNames(t *testing.T, doc any, pointer string) []string {
	t.Helper()
	op := at(t, doc, pointer).(map[string]any)
	var names []string
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		p := p.(map[string]any)
		names = append(names, p["in"].(string)+":"+p["name"].(string))
	}
	return names
}

// annotatedOps returns the operations of the google.api.http annotations
// of the services in files, as the gateway learns them; the services in
// bearer need a token.
func annotatedOps(t *testing.T, bearer map[string]bool, files ...protoreflect.FileDescriptor) []Operation {
	t.Helper()
	var ops []Operation
	for _, fd := range files {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				rule, ok := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
				if !ok || rule == nil {
					continue
				}
				base := Operation{
					Input:           md.Input(),
					Output:          md.Output(),
					Bearer:          bearer[string(sd.FullName())],
					ServerStreaming: md.IsStreamingServer(),
					Service:         string(sd.FullName()),
					RPC:             "/" + string(sd.FullName()) + "/" + string(md.Name()),
					OperationID:     string(md.FullName()),
				}
				for k, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					op := base
					if k > 0 {
						op.OperationID += "_" + strconv.Itoa(k)
					}
					op.Method, op.Path = httpPattern(t, r)
					op.Path, op.PathParams = openAPIPath(op.Path)
					op.Body, op.ResponseBody = r.GetBody(), r.GetResponseBody()
					ops = append(ops, op)
				}
			}
		}
	}
	return ops
}

// httpPattern returns the method and path template of rule.
func httpPattern(t *testing.T, rule *annotations.HttpRule) (method, template string) {
	t.Helper()
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	t.Fatalf("rule without a pattern: %v", rule)
	return "", ""
}

var templateVariable = regexp.MustCompile(`\{([^}=]+)(=[^}]*)?\}`)

// openAPIPath turns a google.api.http path template into an OpenAPI path
// ("/v1/{name=shelves/*}" → "/v1/{name}") and its variables.
func openAPIPath(template string) (string, []string) {
	var params []string
	for _, m := range templateVariable.FindAllStringSubmatch(template, -1) {
		params = append(params, m[1])
	}
	return templateVariable.ReplaceAllString(template, "{$1}"), params
}

// richProto has a field of every kind the schemas map.
const richProto = `syntax = "proto3";

package test.v1;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// Rich has a field of every kind.
message Rich {
  enum Color {
    COLOR_UNSPECIFIED = 0;
    RED = 1;
    GREEN = 2;
  }
  message Inner {
    string label = 1;
    int64 count = 2;
    Rich parent = 3;
  }
  // The name of the thing.
  string name = 1;
  int32 i32 = 2;
  sint32 s32 = 3;
  uint32 u32 = 4;
  int64 i64 = 5;
  sfixed64 sf64 = 6;
  uint64 u64 = 7;
  fixed64 f64 = 8;
  float ratio = 9;
  double score = 10;
  bool flag = 11;
  bytes blob = 12;
  Color color = 13;
  repeated string tags = 14;
  repeated Color colors = 15;
  map<string, Inner> inners = 16;
  map<int64, int64> totals = 17;
  Inner inner = 18;
  Rich child = 19;
  repeated Rich children = 20;
  google.protobuf.Timestamp when = 21;
  google.protobuf.Duration wait = 22;
  google.protobuf.StringValue nick = 23;
  google.protobuf.Int64Value maybe_big = 24;
  google.protobuf.BoolValue maybe_flag = 25;
  google.protobuf.Struct attrs = 26;
  google.protobuf.Value anything = 27;
  google.protobuf.ListValue list = 28;
  google.protobuf.Any extra = 29;
  google.protobuf.FieldMask mask = 30;
  google.protobuf.Empty nothing = 31;
  google.protobuf.NullValue null_value = 32;
  optional string maybe_name = 33;
  repeated google.protobuf.Timestamp times = 34;
  oneof choice {
    string text = 35;
    int32 number = 36;
    Inner nested = 37;
  }
}

message Parent {
  string id = 1;
  Rich rich = 2;
}

service RichService {
  rpc Get(Rich) returns (Rich);
  rpc Watch(Rich) returns (stream Rich);
  rpc Update(Parent) returns (Parent);
}
`

// richFile compiles richProto and turns it into a descriptor with
// protodesc, as the gateway does with the descriptors that server
// reflection sends.
func richFile(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	return compileProto(t, "test/v1/rich.proto", richProto)
}

// compileProto compiles the proto source src, named path, which may import
// the well-known types, and returns its descriptor made by protodesc.
func compileProto(t *testing.T, path, src string) protoreflect.FileDescriptor {
	t.Helper()
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(map[string]string{path: src}),
		}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := c.Compile(t.Context(), path)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	deps := new(protoregistry.Files)
	for _, wkt := range []protoreflect.FileDescriptor{
		anypb.File_google_protobuf_any_proto,
		durationpb.File_google_protobuf_duration_proto,
		emptypb.File_google_protobuf_empty_proto,
		fieldmaskpb.File_google_protobuf_field_mask_proto,
		structpb.File_google_protobuf_struct_proto,
		timestamppb.File_google_protobuf_timestamp_proto,
		wrapperspb.File_google_protobuf_wrappers_proto,
	} {
		if err := deps.RegisterFile(wkt); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := protodesc.NewFile(protoutil.ProtoFromFileDescriptor(compiled[0]), deps)
	if err != nil {
		t.Fatalf("protodesc: %v", err)
	}
	return fd
}

// richOps returns operations on the messages of richProto: one of each
// kind of path, body and answer.
func richOps(t *testing.T) []Operation {
	t.Helper()
	fd := richFile(t)
	svc := fd.Services().ByName("RichService")
	get, watch, update := svc.Methods().ByName("Get"), svc.Methods().ByName("Watch"), svc.Methods().ByName("Update")
	op := func(m protoreflect.MethodDescriptor, id string) Operation {
		return Operation{
			Input:       m.Input(),
			Output:      m.Output(),
			Bearer:      true,
			Service:     string(svc.FullName()),
			RPC:         "/" + string(svc.FullName()) + "/" + string(m.Name()),
			OperationID: id,
		}
	}
	getOp := op(get, "test.v1.RichService.Get")
	getOp.Method, getOp.Path, getOp.PathParams = http.MethodGet, "/v1/rich/{inner.label}", []string{"inner.label"}

	publish := op(get, "test.v1.RichService.Get_1")
	publish.Method, publish.Path, publish.PathParams, publish.Body = http.MethodPost, "/v1/rich/{name}:publish", []string{"name"}, "*"

	watchOp := op(watch, "test.v1.RichService.Watch")
	watchOp.Method, watchOp.Path, watchOp.PathParams = http.MethodGet, "/v1/rich/{i64}:watch", []string{"i64"}
	watchOp.ResponseBody, watchOp.ServerStreaming, watchOp.Bearer = "inner", true, false

	updateOp := op(update, "test.v1.RichService.Update")
	updateOp.Method, updateOp.Path, updateOp.PathParams, updateOp.Body = http.MethodPut, "/v1/parents/{rich.name}", []string{"rich.name"}, "rich"

	copyOp := op(update, "test.v1.RichService.Update_1")
	copyOp.Method, copyOp.Path, copyOp.PathParams, copyOp.Body = http.MethodPost, "/v1/parents/{rich.name}:copy", []string{"rich.name"}, "*"

	purge := op(update, "test.v1.RichService.Update_2")
	purge.Method, purge.Path, purge.PathParams = "PURGE", "/v1/parents/{id}", []string{"id"}

	return []Operation{getOp, publish, watchOp, updateOp, copyOp, purge}
}
