// Package codegen turns .proto sources into the Go code that `buf generate`
// writes with the pinned plugins protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.6.0, byte for byte, without running buf, protoc or
// a plugin binary.
//
// The .proto files are compiled with github.com/bufbuild/protocompile, the
// compiler buf itself uses, into the CodeGeneratorRequest buf would send.
// The .pb.go files come from protoc-gen-go's own generator
// (google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo); the
// _grpc.pb.go files from this package's rewrite of protoc-gen-go-grpc,
// whose generator is a main package that cannot be imported.
package codegen
