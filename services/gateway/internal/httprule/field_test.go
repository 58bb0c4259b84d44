package httprule

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

func TestSetField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before string // the message, in text form
		path   string
		values []string
		want   string // the message after, in text form
	}{
		{"string", "", "s", []string{"héllo"}, `s: "héllo"`},
		{"empty string", "", "s", []string{""}, ``},
		{"bytes std padded", "", "b", []string{"+/+/aGk="}, `b: "\xfb\xff\xbf\x68\x69"`},
		{"bytes std unpadded", "", "b", []string{"+/+/aGk"}, `b: "\xfb\xff\xbf\x68\x69"`},
		{"bytes url padded", "", "b", []string{"-_-_aGk="}, `b: "\xfb\xff\xbf\x68\x69"`},
		{"bytes url unpadded", "", "b", []string{"-_-_aGk"}, `b: "\xfb\xff\xbf\x68\x69"`},
		{"bytes empty", "", "b", []string{""}, ``},
		{"bool true", "", "flag", []string{"true"}, `flag: true`},
		{"bool false", "", "flag", []string{"false"}, ``},
		{"int32", "", "i32", []string{"-2147483648"}, `i32: -2147483648`},
		{"int64", "", "i64", []string{"9223372036854775807"}, `i64: 9223372036854775807`},
		{"uint32", "", "u32", []string{"4294967295"}, `u32: 4294967295`},
		{"uint64", "", "u64", []string{"18446744073709551615"}, `u64: 18446744073709551615`},
		{"sint32", "", "si32", []string{"-7"}, `si32: -7`},
		{"sint64", "", "si64", []string{"-7"}, `si64: -7`},
		{"fixed32", "", "f32", []string{"7"}, `f32: 7`},
		{"fixed64", "", "f64", []string{"7"}, `f64: 7`},
		{"sfixed32", "", "sf32", []string{"-7"}, `sf32: -7`},
		{"sfixed64", "", "sf64", []string{"-7"}, `sf64: -7`},
		{"leading zeros", "", "i32", []string{"007"}, `i32: 7`},
		{"float", "", "fl", []string{"1.5"}, `fl: 1.5`},
		{"float exponent", "", "fl", []string{"-2.5E-3"}, `fl: -0.0025`},
		{"float NaN", "", "fl", []string{"NaN"}, `fl: nan`},
		{"double", "", "db", []string{"1e300"}, `db: 1e300`},
		{"double Infinity", "", "db", []string{"Infinity"}, `db: inf`},
		{"double -Infinity", "", "db", []string{"-Infinity"}, `db: -inf`},
		{"enum name", "", "color", []string{"GREEN"}, `color: GREEN`},
		{"enum number", "", "color", []string{"1"}, `color: RED`},
		{"open enum unknown number", "", "color", []string{"42"}, `color: 42`},
		{"closed enum", "", "legacy.closed", []string{"2"}, `legacy { closed: TWO }`},
		{"closed enum name", "", "legacy.closed", []string{"ONE"}, `legacy { closed: ONE }`},
		{"proto2 string", "", "legacy.name", []string{""}, `legacy { name: "" }`},

		{"nested", "", "sub.subfield", []string{"foo"}, `sub { subfield: "foo" }`},
		{"nested deeper", `sub { count: 1 }`, "sub.inner.inner.subfield", []string{"x"}, `sub { count: 1 inner { inner { subfield: "x" } } }`},
		{"json names", "", "sub.inner.count", []string{"3"}, `sub { inner { count: 3 } }`},
		{"json name", "", "stringValue", []string{"x"}, `string_value { value: "x" }`},
		{"custom json name", "", "customJson", []string{"x"}, `user_id: "x"`},
		{"proto name with custom json name", "", "user_id", []string{"x"}, `user_id: "x"`},

		{"repeated", "", "tags", []string{"a", "b"}, `tags: ["a", "b"]`},
		{"repeated appends", `tags: "a"`, "tags", []string{"b"}, `tags: ["a", "b"]`},
		{"repeated int", "", "nums", []string{"1", "-2"}, `nums: [1, -2]`},
		{"repeated enum", "", "colors", []string{"RED", "2"}, `colors: [RED, GREEN]`},
		{"repeated wrapper", "", "wrapped_nums", []string{"1", "0"}, `wrapped_nums { value: 1 } wrapped_nums {}`},
		{"repeated in nested", "", "sub.tags", []string{"x"}, `sub { tags: "x" }`},

		{"oneof", "", "name", []string{"ada"}, `name: "ada"`},
		{"oneof nested", "", "sub_choice.subfield", []string{"x"}, `sub_choice { subfield: "x" }`},
		{"oneof nested again", `sub_choice { count: 1 }`, "sub_choice.subfield", []string{"x"}, `sub_choice { count: 1 subfield: "x" }`},
		{"optional", "", "opt", []string{""}, `opt: ""`},
		{"optional number", "", "opt_num", []string{"0"}, `opt_num: 0`},
		{"zero value set again", `s: ""`, "s", []string{"x"}, `s: "x"`},

		{"StringValue", "", "string_value", []string{""}, `string_value {}`},
		{"BytesValue", "", "bytes_value", []string{"aGk"}, `bytes_value { value: "hi" }`},
		{"BoolValue", "", "bool_value", []string{"true"}, `bool_value { value: true }`},
		{"Int32Value", "", "int32_value", []string{"-1"}, `int32_value { value: -1 }`},
		{"Int64Value", "", "int64_value", []string{"-1"}, `int64_value { value: -1 }`},
		{"UInt32Value", "", "uint32_value", []string{"1"}, `uint32_value { value: 1 }`},
		{"UInt64Value", "", "uint64_value", []string{"1"}, `uint64_value { value: 1 }`},
		{"FloatValue", "", "float_value", []string{"0.5"}, `float_value { value: 0.5 }`},
		{"DoubleValue", "", "double_value", []string{"NaN"}, `double_value { value: nan }`},
		{"Timestamp", "", "ts", []string{"2025-01-02T03:04:05.123456789Z"}, `ts { seconds: 1735787045 nanos: 123456789 }`},
		{"Timestamp offset", "", "ts", []string{"2025-01-02T04:04:05+01:00"}, `ts { seconds: 1735787045 }`},
		{"Timestamp first", "", "ts", []string{"0001-01-01T00:00:00Z"}, `ts { seconds: -62135596800 }`},
		{"Timestamp last", "", "ts", []string{"9999-12-31T23:59:59.999999999Z"}, `ts { seconds: 253402300799 nanos: 999999999 }`},
		{"Duration", "", "dur", []string{"1.5s"}, `dur { seconds: 1 nanos: 500000000 }`},
		{"Duration negative", "", "dur", []string{"-0.000000001s"}, `dur { nanos: -1 }`},
		{"Duration whole", "", "dur", []string{"-3s"}, `dur { seconds: -3 }`},
		{"Duration max", "", "dur", []string{"315576000000.999999999s"}, `dur { seconds: 315576000000 nanos: 999999999 }`},
		{"FieldMask", "", "mask", []string{"name,email,sub.subfield"}, `mask { paths: ["name", "email", "sub.subfield"] }`},
		{"FieldMask camel", "", "mask", []string{"userId,sub.innerCount"}, `mask { paths: ["user_id", "sub.inner_count"] }`},
		{"FieldMask empty", "", "mask", []string{""}, `mask {}`},
		{"Timestamp in unset messages", "", "sub.inner.at", []string{"1970-01-01T00:00:01Z"}, `sub { inner { at { seconds: 1 } } }`},
		{"Timestamp inside", "", "ts.seconds", []string{"5"}, `ts { seconds: 5 }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newRich(t, tc.before)
			if err := SetField(m, tc.path, tc.values...); err != nil {
				t.Fatalf("SetField(%q, %q): %v", tc.path, tc.values, err)
			}
			if diff := cmp.Diff(newRich(t, tc.want), m, protocmp.Transform(), cmpopts.EquateNaNs()); diff != "" {
				t.Errorf("SetField(%q, %q) (-want +got):\n%s", tc.path, tc.values, diff)
			}
		})
	}
}

func TestSetFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		before string
		path   string
		values []string
		want   string // the FieldError's reason contains it
	}{
		{"", "", []string{"x"}, "empty field path"},
		{"", "nope", []string{"x"}, `unknown field "nope" in httprule.test.Rich`},
		{"", "sub.nope", []string{"x"}, `unknown field "nope" in httprule.test.Rich.Sub`},
		{"", "Sub", []string{"x"}, `unknown field "Sub"`},
		{"", "sub.", []string{"x"}, "empty field name"},
		{"", ".s", []string{"x"}, "empty field name"},
		{"", "s.x", []string{"x"}, `"s" is not a message field`},
		{"", "subs.subfield", []string{"x"}, `"subs" is a repeated field`},
		{"", "labels.x", []string{"x"}, `"labels" is a map field`},
		{"", strings.Repeat("sub.", 32) + "count", []string{"1"}, "more than 32 names"},
		{"", "labels", []string{"x"}, "is a map field"},
		{"", "sub", []string{"x"}, "is a message field (httprule.test.Rich.Sub)"},
		{"", "subs", []string{"x"}, "is a message field"},
		{"", "st", []string{"{}"}, "is a message field (google.protobuf.Struct)"},
		{"", "val", []string{"1"}, "is a message field (google.protobuf.Value)"},
		{"", "s", nil, "no value"},
		{"", "tags", nil, "no value"},
		{"", "s", []string{"a", "b"}, "takes one value, got 2"},
		{`s: "a"`, "s", []string{"b"}, "is set already"},
		{`flag: true`, "flag", []string{"false"}, "is set already"},
		{`opt: ""`, "opt", []string{"b"}, "is set already"},
		{`sub { subfield: "a" }`, "sub.subfield", []string{"b"}, "is set already"},
		{`ts {}`, "ts", []string{"2025-01-02T03:04:05Z"}, "is set already"},
		{`name: "a"`, "name", []string{"b"}, "is set already"},
		{`name: "a"`, "number", []string{"1"}, `"number" is in oneof "choice", whose field "name" is set`},
		{`number: 0`, "sub_choice.subfield", []string{"x"}, `"sub_choice" is in oneof "choice", whose field "number" is set`},
		{`sub_choice {}`, "name", []string{"x"}, `whose field "sub_choice" is set`},

		{"", "s", []string{"\xff"}, `value "\xff" is not valid UTF-8`},
		{"", "string_value", []string{"a\xffb"}, "not valid UTF-8"},
		{"", "b", []string{"!!"}, `invalid value "!!" for bytes`},
		{"", "b", []string{"aGk=="}, "for bytes"},
		{"", "b", []string{"-_+/"}, "for bytes"},
		{"", "flag", []string{"True"}, `invalid value "True" for bool`},
		{"", "flag", []string{"1"}, "for bool"},
		{"", "i32", []string{"2147483648"}, `invalid value "2147483648" for int32`},
		{"", "i32", []string{"+1"}, "for int32"},
		{"", "i32", []string{"1.0"}, "for int32"},
		{"", "i32", []string{"0x10"}, "for int32"},
		{"", "i32", []string{"1_000"}, "for int32"},
		{"", "i32", []string{" 1"}, "for int32"},
		{"", "i32", []string{""}, "for int32"},
		{"", "i64", []string{"9223372036854775808"}, "for int64"},
		{"", "sf32", []string{"2147483648"}, "for sfixed32"},
		{"", "si64", []string{"x"}, "for sint64"},
		{"", "u32", []string{"-1"}, "for uint32"},
		{"", "u32", []string{"4294967296"}, "for uint32"},
		{"", "f32", []string{"4294967296"}, "for fixed32"},
		{"", "u64", []string{"18446744073709551616"}, "for uint64"},
		{"", "f64", []string{"-0"}, "for fixed64"},
		{"", "fl", []string{"1e39"}, `invalid value "1e39" for float`},
		{"", "fl", []string{"inf"}, "for float"},
		{"", "db", []string{"nan"}, "for double"},
		{"", "db", []string{"+Inf"}, "for double"},
		{"", "db", []string{"0x1p3"}, "for double"},
		{"", "db", []string{".5"}, "for double"},
		{"", "db", []string{"01"}, "for double"},
		{"", "db", []string{"1."}, "for double"},
		{"", "db", []string{"1e"}, "for double"},
		{"", "db", []string{"1e400"}, "for double"},
		{"", "db", []string{""}, "for double"},
		{"", "color", []string{"BLUE"}, `unknown value "BLUE" of enum httprule.test.Color`},
		{"", "color", []string{"red"}, "unknown value"},
		{"", "color", []string{"2147483648"}, "unknown value"},
		{"", "legacy.closed", []string{"3"}, `unknown value "3" of enum httprule.test.Closed`},
		{"", "int32_value", []string{"x"}, `invalid value "x" for int32`},
		{"", "bool_value", []string{"yes"}, "for bool"},
		{"", "ts", []string{"2025-01-02"}, `invalid value "2025-01-02" for google.protobuf.Timestamp`},
		{"", "ts", []string{"2025-01-02T03:04:05"}, "for google.protobuf.Timestamp"},
		{"", "ts", []string{"2025-13-02T03:04:05Z"}, "for google.protobuf.Timestamp"},
		{"", "ts", []string{"1735787045"}, "for google.protobuf.Timestamp"},
		{"", "dur", []string{"1.5"}, `invalid value "1.5" for google.protobuf.Duration`},
		{"", "dur", []string{"1m"}, "for google.protobuf.Duration"},
		{"", "dur", []string{".5s"}, "for google.protobuf.Duration"},
		{"", "dur", []string{"1.s"}, "for google.protobuf.Duration"},
		{"", "dur", []string{"1.0000000001s"}, "for google.protobuf.Duration"},
		{"", "dur", []string{"--1s"}, "for google.protobuf.Duration"},
		{"", "dur", []string{"+1s"}, "for google.protobuf.Duration"},
		{"", "dur", []string{"315576000001s"}, "for google.protobuf.Duration"},
		{"", "dur", []string{"s"}, "for google.protobuf.Duration"},
		{"", "mask", []string{"a,,b"}, `invalid value "a,,b" for google.protobuf.FieldMask`},
		{"", "mask", []string{"a b"}, "for google.protobuf.FieldMask"},
		{"", "mask", []string{"a..b"}, "for google.protobuf.FieldMask"},
		{"", "mask", []string{"1a"}, "for google.protobuf.FieldMask"},
		{"", "s", []string{strings.Repeat("\xff", 100)}, `...`},
	} {
		t.Run(tc.path+" "+strings.Join(tc.values, ","), func(t *testing.T) {
			m := newRich(t, tc.before)
			before := clone(m)
			err := SetField(m, tc.path, tc.values...)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("SetField(%q, %q) = %v, want a *FieldError", tc.path, tc.values, err)
			}
			if fe.Field != tc.path || !strings.Contains(fe.Reason, tc.want) {
				t.Errorf("SetField(%q, %q): field %q, reason %q; want %q and a reason with %q",
					tc.path, tc.values, fe.Field, fe.Reason, tc.path, tc.want)
			}
			if diff := cmp.Diff(before, m.Interface(), protocmp.Transform()); diff != "" {
				t.Errorf("SetField(%q, %q) changed the message on an error (-before +after):\n%s", tc.path, tc.values, diff)
			}
		})
	}
}

func TestFieldErrorError(t *testing.T) {
	err := &FieldError{Field: "page_size", Reason: `invalid value "x" for int32`}
	if got, want := err.Error(), `field "page_size": invalid value "x" for int32`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestSetFieldGenerated sets the fields of generated messages, of the
// repository's services and of the well-known types.
func TestSetFieldGenerated(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		req := &userv1.UpdateUserRequest{}
		for _, f := range []struct{ path, value string }{{"id", "u1"}, {"name", "Ada"}, {"email", ""}} {
			if err := SetField(req.ProtoReflect(), f.path, f.value); err != nil {
				t.Fatalf("SetField(%q): %v", f.path, err)
			}
		}
		want := &userv1.UpdateUserRequest{Id: "u1", Name: proto.String("Ada"), Email: proto.String("")}
		if diff := cmp.Diff(want, req, protocmp.Transform()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if err := SetField(req.ProtoReflect(), "email", "x"); err == nil {
			t.Error("SetField of an optional field set to \"\" succeeded")
		}
	})
	t.Run("user timestamps", func(t *testing.T) {
		u := &userv1.User{}
		if err := SetField(u.ProtoReflect(), "createTime", "2025-01-02T03:04:05Z"); err != nil {
			t.Fatal(err)
		}
		if err := SetField(u.ProtoReflect(), "update_time.nanos", "7"); err != nil {
			t.Fatal(err)
		}
		want := &userv1.User{CreateTime: timestamppb.New(mustTime(t, "2025-01-02T03:04:05Z")), UpdateTime: &timestamppb.Timestamp{Nanos: 7}}
		if diff := cmp.Diff(want, u, protocmp.Transform()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("list", func(t *testing.T) {
		req := &userv1.ListUsersRequest{}
		if err := SetField(req.ProtoReflect(), "pageSize", "10"); err != nil {
			t.Fatal(err)
		}
		if req.GetPageSize() != 10 {
			t.Errorf("page_size = %d, want 10", req.GetPageSize())
		}
	})
	t.Run("greeter", func(t *testing.T) {
		req := &greeterv1.SayHelloRequest{}
		if err := SetField(req.ProtoReflect(), "name", "Ada Lovelace"); err != nil {
			t.Fatal(err)
		}
		if req.GetName() != "Ada Lovelace" {
			t.Errorf("name = %q", req.GetName())
		}
	})
	t.Run("well-known", func(t *testing.T) {
		for _, tc := range []struct {
			msg   proto.Message
			path  string
			value string
			want  proto.Message
		}{
			{&wrapperspb.StringValue{}, "value", "x", wrapperspb.String("x")},
			{&wrapperspb.Int64Value{}, "value", "-5", wrapperspb.Int64(-5)},
			{&durationpb.Duration{}, "seconds", "5", &durationpb.Duration{Seconds: 5}},
			{&fieldmaskpb.FieldMask{}, "paths", "a.b", &fieldmaskpb.FieldMask{Paths: []string{"a.b"}}},
		} {
			if err := SetField(tc.msg.ProtoReflect(), tc.path, tc.value); err != nil {
				t.Fatalf("SetField(%T, %q): %v", tc.msg, tc.path, err)
			}
			if diff := cmp.Diff(tc.want, tc.msg, protocmp.Transform()); diff != "" {
				t.Errorf("SetField(%T, %q) (-want +got):\n%s", tc.msg, tc.path, diff)
			}
		}
	})
}

func TestSetQuery(t *testing.T) {
	boundBy := func(paths ...string) func(string) bool {
		return func(p string) bool {
			for _, b := range paths {
				if p == b {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		name  string
		query string
		bound []string
		want  string // the message, in text form
		err   *FieldError
	}{
		{"empty", "", nil, ``, nil},
		{"http.proto", "revision=2&sub.subfield=foo", nil, ``, &FieldError{"revision", `unknown field "revision" in httprule.test.Rich`}},
		{"fields", "i64=2&sub.subfield=foo&tags=a&tags=b&color=RED", nil, `i64: 2 sub { subfield: "foo" } tags: ["a", "b"] color: RED`, nil},
		{"json names", "stringValue=x&sub.inner.count=3", nil, `string_value { value: "x" } sub { inner { count: 3 } }`, nil},
		{"bound", "s=x", []string{"s"}, ``, &FieldError{"s", "is bound by the path or body"}},
		{"inside bound", "sub.subfield=x", []string{"sub"}, ``, &FieldError{"sub.subfield", "is bound by the path or body"}},
		{"bound by json name", "customJson=x", []string{"user_id"}, ``, &FieldError{"customJson", "is bound by the path or body"}},
		{"bound by nested json name", "sub.inner.count=1", []string{"sub.inner"}, ``, &FieldError{"sub.inner.count", "is bound by the path or body"}},
		{"inside a bound scalar", "s.x=1", []string{"s"}, ``, &FieldError{"s.x", "is bound by the path or body"}},
		{"other fields of a bound message", "sub.count=1", []string{"sub.subfield"}, `sub { count: 1 }`, nil},
		{"first error in key order", "zzz=1&i32=x&aaa=1", nil, ``, &FieldError{"aaa", `unknown field "aaa" in httprule.test.Rich`}},
		{"values before the error stay", "flag=true&i32=x", nil, `flag: true`, &FieldError{"i32", `invalid value "x" for int32`}},
		{"singular twice", "s=a&s=b", nil, ``, &FieldError{"s", "takes one value, got 2"}},
		{"empty key", "=x", nil, ``, &FieldError{"", "empty field path"}},
		{"deep", strings.Repeat("sub.", 40) + "count=1", nil, ``, &FieldError{strings.Repeat("sub.", 40) + "count", "field path of more than 32 names"}},
		{"message", "sub=x", nil, ``, &FieldError{"sub", "is a message field (httprule.test.Rich.Sub), which a string cannot set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			m := newRich(t, "")
			err = SetQuery(m, q, boundBy(tc.bound...))
			var fe *FieldError
			if tc.err == nil && err != nil || tc.err != nil && !errors.As(err, &fe) {
				t.Fatalf("SetQuery(%q) = %v, want %v", tc.query, err, tc.err)
			}
			if diff := cmp.Diff(tc.err, fe); diff != "" {
				t.Errorf("SetQuery(%q) error (-want +got):\n%s", tc.query, diff)
			}
			if diff := cmp.Diff(newRich(t, tc.want), m, protocmp.Transform()); diff != "" {
				t.Errorf("SetQuery(%q) (-want +got):\n%s", tc.query, diff)
			}
		})
	}
}

// TestSetQueryCallsBoundWithProtoNames checks the paths given to bound:
// every prefix of a key, in proto names.
func TestSetQueryCallsBoundWithProtoNames(t *testing.T) {
	var got []string
	bound := func(p string) bool {
		got = append(got, p)
		return false
	}
	q := url.Values{"sub.inner.count": {"1"}, "customJson": {"x"}}
	if err := SetQuery(newRich(t, ""), q, bound); err != nil {
		t.Fatal(err)
	}
	want := []string{"user_id", "sub", "sub.inner", "sub.inner.count"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bound was called with (-want +got):\n%s", diff)
	}
}

func TestSetQueryNilBound(t *testing.T) {
	m := newRich(t, "")
	if err := SetQuery(m, url.Values{"sub.subfield": {"x"}}, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(newRich(t, `sub { subfield: "x" }`), m, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSetQueryManyKeys(t *testing.T) {
	q := url.Values{}
	for i := range 10000 {
		q.Add("tags", "t")
		q.Add(strings.Repeat("x", i%50)+"k", "v")
	}
	err := SetQuery(newRich(t, ""), q, func(string) bool { return false })
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.HasPrefix(fe.Reason, "unknown field") || fe.Field != "k" {
		t.Fatalf("SetQuery = %v, want an unknown field \"k\"", err)
	}
	m := newRich(t, "")
	if err := SetQuery(m, url.Values{"tags": q["tags"]}, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if n := m.Get(m.Descriptor().Fields().ByName("tags")).List().Len(); n != 10000 {
		t.Errorf("tags has %d values, want 10000", n)
	}
}
