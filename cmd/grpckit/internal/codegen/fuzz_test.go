package codegen_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/grpckit/grpckit/cmd/grpckit/internal/codegen"
)

// FuzzGenerate generates code for one arbitrary .proto file, which may
// import the well-known types only: Generate must not panic, and the Go
// files it returns must parse.
func FuzzGenerate(f *testing.F) {
	const name = "fuzz/v1/fuzz.proto"
	root := repoRoot(f)
	for _, seed := range []string{
		filepath.Join(root, "proto/greeter/v1/greeter.proto"),
		filepath.Join(root, "proto/user/v1/user.proto"),
		filepath.Join(root, "kit/internal/testpb/v1/test.proto"),
		"testdata/shop/shop/v1/shop.proto",
		"testdata/shop/shop/v1/legacy.proto",
		"testdata/shop/shop/v1/edition.proto",
	} {
		src, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	f.Add(`syntax = "proto3";
package fuzz.v1;
import "google/protobuf/empty.proto";
option go_package = "github.com/grpckit/grpckit/fuzz/v1;fuzzv1";
// S streams.
service S {
  rpc Unary(M) returns (M);
  rpc Server(M) returns (stream M);
  rpc Client(stream M) returns (google.protobuf.Empty) { option deprecated = true; }
  rpc Bidi(stream M) returns (stream M);
}
message M { oneof o { string a = 1; M b = 2; } optional int32 c = 3; map<string, M> d = 4; enum E { E_0 = 0; } E e = 5; }
`)
	f.Fuzz(func(t *testing.T, src string) {
		out, err := codegen.Generate(fstest.MapFS{name: {Data: []byte(src)}}, []string{name}, "github.com/grpckit/grpckit")
		if err != nil {
			return
		}
		if len(out) == 0 {
			t.Fatal("Generate succeeded without output")
		}
		for file, code := range out {
			if !fs.ValidPath(file) {
				t.Errorf("generated file name %q is not a relative slash path", file)
			}
			if _, err := parser.ParseFile(token.NewFileSet(), file, code, parser.ParseComments); err != nil {
				t.Errorf("%s does not parse: %v\n%s", file, err, code)
			}
		}
	})
}
