package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// shopFiles compiles testdata/shop/v1/shop.proto (importing the vendored
// google/api protos) and returns its files as a server's reflection
// would describe them.
func shopFiles(t testing.TB) *protoregistry.Files {
	t.Helper()
	return compileFiles(t, "shop/v1/shop.proto")
}

// compileFiles compiles testdata/<path> as shopFiles does.
func compileFiles(t testing.TB, path string) *protoregistry.Files {
	t.Helper()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		ImportPaths: []string{"testdata", "../../proto"},
	})}
	linked, err := c.Compile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire form, as reflection carries them: the options are
	// then parsed with the registered google.api.http extension.
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		for i := range f.Imports().Len() {
			add(f.Imports().Get(i).FileDescriptor)
		}
		b, err := proto.Marshal(protodesc.ToFileDescriptorProto(f))
		if err != nil {
			t.Fatal(err)
		}
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatal(err)
		}
		set.File = append(set.File, fd)
	}
	add(linked[0])
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// shopBackend is a server of shop.v1.ShopService built on the compiled
// descriptors alone: it records the requests it gets (in protojson) and
// answers each method in a fixed way.
type shopBackend struct {
	files    *protoregistry.Files
	service  protoreflect.ServiceDescriptor
	mu       sync.Mutex
	requests []string // "Method {json}"
	headers  []metadata.MD
}

// serveShop serves a shopBackend with server reflection over bufconn and
// returns it and a connection to it; both stop on cleanup.
func serveShop(t testing.TB) (*shopBackend, *grpc.ClientConn) {
	t.Helper()
	b, gs := shopServer(t)
	return b, dialBufconn(t, serveBufconn(t, gs))
}

// shopServer returns a shopBackend and a gRPC server of it with server
// reflection.
func shopServer(t testing.TB) (*shopBackend, *grpc.Server) {
	t.Helper()
	files := shopFiles(t)
	d, err := files.FindDescriptorByName("shop.v1.ShopService")
	if err != nil {
		t.Fatal(err)
	}
	b := &shopBackend{files: files, service: d.(protoreflect.ServiceDescriptor)}
	gs := grpc.NewServer(grpc.UnknownServiceHandler(b.handle))
	reflectionpb.RegisterServerReflectionServer(gs, reflection.NewServerV1(reflection.ServerOptions{
		Services:           serviceList{"shop.v1.ShopService", "grpc.reflection.v1.ServerReflection"},
		DescriptorResolver: files,
		ExtensionResolver:  protoregistry.GlobalTypes,
	}))
	return b, gs
}

// serveBufconn serves gs over bufconn until cleanup and returns the
// listener.
func serveBufconn(t testing.TB, gs *grpc.Server) *bufconn.Listener {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		// Stop before Serve began makes Serve return ErrServerStopped.
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis
}

// dialBufconn returns a connection to lis, closed on cleanup.
func dialBufconn(t testing.TB, lis *bufconn.Listener, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// serviceList is the reflection's list of services.
type serviceList []string

func (l serviceList) GetServiceInfo() map[string]grpc.ServiceInfo {
	m := map[string]grpc.ServiceInfo{}
	for _, s := range l {
		m[s] = grpc.ServiceInfo{}
	}
	return m
}

// last returns the last request recorded, "Method {json}".
func (b *shopBackend) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		return ""
	}
	return b.requests[len(b.requests)-1]
}

// lastHeader returns the metadata of the last request.
func (b *shopBackend) lastHeader() metadata.MD {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.headers) == 0 {
		return nil
	}
	return b.headers[len(b.headers)-1]
}

func (b *shopBackend) handle(_ any, ss grpc.ServerStream) error {
	full, _ := grpc.MethodFromServerStream(ss)
	name := full[len("/shop.v1.ShopService/"):]
	m := b.service.Methods().ByName(protoreflect.Name(name))
	if m == nil {
		return status.Errorf(codes.Unimplemented, "no method %s", full)
	}
	in := dynamicpb.NewMessage(m.Input())
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	js, _ := protojson.MarshalOptions{Resolver: dynamicpb.NewTypes(b.files)}.Marshal(in)
	md, _ := metadata.FromIncomingContext(ss.Context())
	b.mu.Lock()
	b.requests = append(b.requests, name+" "+compactJSON(js))
	b.headers = append(b.headers, md)
	b.mu.Unlock()
	out := func(format string, args ...any) error {
		msg := dynamicpb.NewMessage(m.Output())
		if err := protojson.Unmarshal(fmt.Appendf(nil, format, args...), msg); err != nil {
			return status.Errorf(codes.Internal, "test answer: %v", err)
		}
		return ss.SendMsg(msg)
	}
	get := func(field string) protoreflect.Value {
		return in.Get(in.Descriptor().Fields().ByName(protoreflect.Name(field)))
	}
	switch name {
	case "GetBook":
		if get("name").String() == "shelves/1/books/missing" {
			return status.Error(codes.NotFound, "no such book")
		}
		return out(`{"name": %q, "title": "Dune", "pages": "412", "kind": "NOVEL"}`, get("name").String())
	case "CreateBook":
		ss.SetHeader(metadata.Pairs(HTTPCodeHeader, "201", LocationHeader, "/v1/"+get("parent").String()+"/books/new"))
		book, _ := protojson.Marshal(get("book").Message().Interface())
		return ss.SendMsg(mustJSON(m.Output(), string(book)))
	case "UpdateBook":
		book, _ := protojson.Marshal(get("book").Message().Interface())
		return ss.SendMsg(mustJSON(m.Output(), string(book)))
	case "Search":
		return out(`{"books": [{"name": %q}, {"name": "two"}], "next_page_token": "next"}`, get("query").String())
	case "Publish":
		return out(`{"published": true, "name": %q}`, get("name").String())
	case "Watch":
		for i := range min(int(get("count").Int()), 100) {
			if err := out(`{"name": "%s/%d"}`, get("shelf").String(), i); err != nil {
				return err
			}
		}
		if get("fail").Bool() {
			return status.Error(codes.Unavailable, "the shelf fell over at 10.0.0.7")
		}
		return nil
	}
	return status.Errorf(codes.Unimplemented, "%s is not served", name)
}

// mustJSON returns a message of desc from JSON.
func mustJSON(desc protoreflect.MessageDescriptor, js string) *dynamicpb.Message {
	msg := dynamicpb.NewMessage(desc)
	if err := protojson.Unmarshal([]byte(js), msg); err != nil {
		panic(err)
	}
	return msg
}

// compactJSON removes protojson's random spaces.
func compactJSON(b []byte) string {
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		return string(b)
	}
	out, _ := json.Marshal(m)
	return string(out)
}

// shopGateway returns a gateway serving the shop backend (learnt through
// its reflection) with the public methods given, and the backend.
func shopGateway(t testing.TB, cfg Config, public ...string) (*Gateway, *shopBackend) {
	t.Helper()
	b, cc := serveShop(t)
	services, types, err := Reflect(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetAPI(API{Name: "shop", Services: services, Types: types, Public: public, Conn: cc}); err != nil {
		t.Fatal(err)
	}
	return g, b
}
