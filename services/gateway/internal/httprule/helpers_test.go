package httprule

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// richProto has a field of every kind that SetField takes, and of the kinds
// it refuses. Its messages are dynamic: tests make them with newRich.
const richProto = `
syntax = "proto3";
package httprule.test;

import "google/protobuf/duration.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "closed.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  RED = 1;
  GREEN = 2;
}

message Rich {
  message Sub {
    string subfield = 1;
    Sub inner = 2;
    int64 count = 3;
    repeated string tags = 4;
    google.protobuf.Timestamp at = 5;
  }

  string s = 1;
  bytes b = 2;
  bool flag = 3;
  int32 i32 = 4;
  int64 i64 = 5;
  uint32 u32 = 6;
  uint64 u64 = 7;
  sint32 si32 = 8;
  sint64 si64 = 9;
  fixed32 f32 = 10;
  fixed64 f64 = 11;
  sfixed32 sf32 = 12;
  sfixed64 sf64 = 13;
  float fl = 14;
  double db = 15;
  Color color = 16;

  repeated string tags = 17;
  repeated int32 nums = 18;
  repeated Color colors = 19;
  repeated Sub subs = 20;
  repeated google.protobuf.Int32Value wrapped_nums = 21;

  Sub sub = 22;
  map<string, string> labels = 23;
  oneof choice {
    string name = 24;
    int64 number = 25;
    Sub sub_choice = 26;
  }
  optional string opt = 27;
  optional int32 opt_num = 28;
  string user_id = 29 [json_name = "customJson"];

  google.protobuf.StringValue string_value = 30;
  google.protobuf.BytesValue bytes_value = 31;
  google.protobuf.BoolValue bool_value = 32;
  google.protobuf.Int32Value int32_value = 33;
  google.protobuf.Int64Value int64_value = 34;
  google.protobuf.UInt32Value uint32_value = 35;
  google.protobuf.UInt64Value uint64_value = 36;
  google.protobuf.FloatValue float_value = 37;
  google.protobuf.DoubleValue double_value = 38;
  google.protobuf.Timestamp ts = 39;
  google.protobuf.Duration dur = 40;
  google.protobuf.FieldMask mask = 41;
  google.protobuf.Struct st = 42;
  google.protobuf.Value val = 43;

  Legacy legacy = 44;
}
`

// closedProto has a closed enum, which refuses unknown numbers.
const closedProto = `
syntax = "proto2";
package httprule.test;

enum Closed {
  ONE = 1;
  TWO = 2;
}

message Legacy {
  optional string name = 1;
  optional int32 num = 2;
  optional Closed closed = 3;
}
`

var richDesc = sync.OnceValues(func() (protoreflect.MessageDescriptor, error) {
	sources := map[string]string{"rich.proto": richProto, "closed.proto": closedProto}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(sources),
		}),
	}
	files, err := c.Compile(context.Background(), "closed.proto", "rich.proto")
	if err != nil {
		return nil, err
	}
	// Rebuild the descriptors with protodesc over the global registry, so
	// that the well-known types are the usual ones.
	reg := new(protoregistry.Files)
	var rich protoreflect.FileDescriptor
	for _, f := range files {
		fd, err := protodesc.NewFile(protodesc.ToFileDescriptorProto(f), resolverChain{reg, protoregistry.GlobalFiles})
		if err != nil {
			return nil, err
		}
		if err := reg.RegisterFile(fd); err != nil {
			return nil, err
		}
		rich = fd
	}
	return rich.Messages().ByName("Rich"), nil
})

// resolverChain finds a file in the first of its registries that has it.
type resolverChain []*protoregistry.Files

func (c resolverChain) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	for _, r := range c {
		if fd, err := r.FindFileByPath(path); err == nil {
			return fd, nil
		}
	}
	return nil, protoregistry.NotFound
}

func (c resolverChain) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	for _, r := range c {
		if d, err := r.FindDescriptorByName(name); err == nil {
			return d, nil
		}
	}
	return nil, protoregistry.NotFound
}

// newRich returns a dynamic httprule.test.Rich, set from its text form.
func newRich(t testing.TB, text string) *dynamicpb.Message {
	t.Helper()
	md, err := richDesc()
	if err != nil {
		t.Fatalf("compiling the test protos: %v", err)
	}
	m := dynamicpb.NewMessage(md)
	if err := prototext.Unmarshal([]byte(text), m); err != nil {
		t.Fatalf("prototext.Unmarshal(%q): %v", text, err)
	}
	return m
}

// clone returns a deep copy of m.
func clone(m protoreflect.Message) proto.Message {
	return proto.Clone(m.Interface())
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
