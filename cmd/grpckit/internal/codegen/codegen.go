package codegen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"github.com/bufbuild/protocompile/options"
	"github.com/bufbuild/protocompile/protoutil"
	"github.com/bufbuild/protocompile/reporter"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// Generate compiles the named .proto files (slash paths relative to the proto
// root, e.g. "shop/v1/shop.proto"), reading them and their imports from src
// (an fs.FS rooted at the proto root; google/protobuf well-known imports come
// built in), and returns the Go files protoc-gen-go and protoc-gen-go-grpc
// write for them with the option module=<module>, keyed by slash path relative
// to the Go module root (e.g. "proto/shop/v1/shop.pb.go"). It writes nothing.
//
// A file whose source does not compile fails with an error naming its
// file:line:col; so does a file whose go_package lies outside module.
// Generate may be called concurrently. It reads src from several goroutines
// at once.
func Generate(src fs.FS, files []string, module string) (map[string][]byte, error) {
	if module == "" || strings.ContainsAny(module, ", \t\n") {
		return nil, fmt.Errorf("codegen: bad module path %q", module)
	}
	files, err := checkNames(files)
	if err != nil {
		return nil, err
	}
	req, err := compile(src, files)
	if err != nil {
		return nil, err
	}
	req.Parameter = proto.String("module=" + module)
	out := make(map[string][]byte)
	for _, p := range plugins {
		if err := p.run(req, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkNames validates the names of the files to generate and drops
// repeated names.
func checkNames(files []string) ([]string, error) {
	if len(files) == 0 {
		return nil, errors.New("codegen: no files to generate")
	}
	var names []string
	for _, name := range files {
		if !fs.ValidPath(name) || !strings.HasSuffix(name, ".proto") {
			return nil, fmt.Errorf("codegen: bad file name %q: want a slash path relative to the proto root, ending in .proto", name)
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

// compile compiles files as buf does and returns the CodeGeneratorRequest
// buf would send a plugin for them, without a parameter.
func compile(src fs.FS, files []string) (*pluginpb.CodeGeneratorRequest, error) {
	var (
		mu   sync.Mutex
		errs []reporter.ErrorWithPos
	)
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: func(name string) (io.ReadCloser, error) { return src.Open(name) },
		}),
		// buf's mode: comments are kept, also inside option values.
		SourceInfoMode: protocompile.SourceInfoExtraOptionLocations,
		Reporter: reporter.NewReporter(func(err reporter.ErrorWithPos) error {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
			return nil // go on, to report every error
		}, nil),
	}
	linked, err := c.Compile(context.Background(), files...)
	if len(errs) > 0 {
		return nil, compileError(errs)
	}
	if err != nil {
		return nil, fmt.Errorf("codegen: %w", err)
	}

	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: files}
	for _, fd := range dependencyOrder(linked) {
		p := protoutil.ProtoFromFileDescriptor(fd)
		if slices.Contains(files, fd.Path()) {
			// As buf does: source-retention options go only to
			// source_file_descriptors (protoc-gen-go strips them from
			// the descriptor it embeds anyway).
			req.SourceFileDescriptors = append(req.SourceFileDescriptors, p)
			if p, err = options.StripSourceRetentionOptionsFromFile(p); err != nil {
				return nil, fmt.Errorf("codegen: %s: %w", fd.Path(), err)
			}
		}
		req.ProtoFile = append(req.ProtoFile, p)
	}
	return req, nil
}

// compileError joins the compiler's errors in source order, each starting
// with its file:line:col.
func compileError(errs []reporter.ErrorWithPos) error {
	slices.SortStableFunc(errs, func(a, b reporter.ErrorWithPos) int {
		pa, pb := a.GetPosition(), b.GetPosition()
		return cmp.Or(strings.Compare(pa.Filename, pb.Filename), cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Col, pb.Col))
	})
	joined := make([]error, len(errs))
	for i, err := range errs {
		joined[i] = err
	}
	return fmt.Errorf("codegen: %w", errors.Join(joined...))
}

// dependencyOrder lists files and their imports, every file after its
// imports, as buf's image does: depth first, imports in declaration order.
func dependencyOrder(files linker.Files) []protoreflect.FileDescriptor {
	var (
		order []protoreflect.FileDescriptor
		seen  = make(map[string]bool)
		visit func(protoreflect.FileDescriptor)
	)
	visit = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
		order = append(order, fd)
	}
	for _, fd := range files {
		visit(fd)
	}
	return order
}

// A plugin is one protoc plugin, run in-process on a protogen.Plugin.
type plugin struct {
	name     string
	generate func(*protogen.Plugin, *protogen.File)
	// The editions the plugin's main declares it supports; buf fails a file
	// of another edition.
	minEdition, maxEdition descriptorpb.Edition
}

// plugins are the plugins of buf.gen.yaml, in its order.
var plugins = []plugin{
	{
		name:       "protoc-gen-go",
		generate:   func(gen *protogen.Plugin, f *protogen.File) { gengo.GenerateFile(gen, f) },
		minEdition: gengo.SupportedEditionsMinimum,
		maxEdition: gengo.SupportedEditionsMaximum,
	},
	{
		name:       "protoc-gen-go-grpc",
		generate:   generateGRPC,
		minEdition: descriptorpb.Edition_EDITION_PROTO2,
		maxEdition: descriptorpb.Edition_EDITION_2024,
	},
}

// run runs p on req and adds the files it writes to out.
func (p plugin) run(req *pluginpb.CodeGeneratorRequest, out map[string][]byte) error {
	for _, f := range req.ProtoFile {
		if e := f.GetEdition(); f.GetSyntax() == "editions" && slices.Contains(req.FileToGenerate, f.GetName()) && (e < p.minEdition || e > p.maxEdition) {
			return fmt.Errorf("codegen: %s: %s: %v is not supported", p.name, f.GetName(), e)
		}
	}
	gen, err := protogen.Options{ParamFunc: func(name, _ string) error {
		return fmt.Errorf("unknown parameter %q", name)
	}}.New(req)
	if err != nil {
		return fmt.Errorf("codegen: %s: %s", p.name, strings.TrimSpace(err.Error()))
	}
	for _, f := range gen.Files {
		if f.Generate {
			p.generate(gen, f)
		}
	}
	resp := gen.Response()
	if resp.Error != nil {
		return fmt.Errorf("codegen: %s: %s", p.name, strings.TrimSpace(resp.GetError()))
	}
	for _, f := range resp.File {
		if !fs.ValidPath(f.GetName()) {
			return fmt.Errorf("codegen: %s: generated file name %q is not a path inside the module", p.name, f.GetName())
		}
		if _, ok := out[f.GetName()]; ok {
			return fmt.Errorf("codegen: %s: two files generate %s", p.name, f.GetName())
		}
		out[f.GetName()] = []byte(f.GetContent())
	}
	return nil
}
