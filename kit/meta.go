package kit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/grpckit/grpckit/kit/middleware/auth"
)

// Registration meta a kit server publishes beside its instance, for the
// callers that learn its API at run time (the REST gateway).
const (
	// MetaAPI is a fingerprint of the service's API: of the proto files
	// (with their imports) of every gRPC service the server serves. It
	// changes when the protos change, so a caller that learnt the API
	// through server reflection knows when to learn it again.
	MetaAPI = "grpckit_api"
	// MetaPublic lists the methods callable without a token, the server's
	// auth.public_methods joined by commas ("/pkg.Service/Method" or
	// "/pkg.Service/*"), or "*" when the server checks no token (no auth
	// layer: auth.disabled). A list longer
	// than a Consul meta value (512 bytes) continues in MetaPublic+"_1",
	// "_2", ...: see [PublicMethods].
	MetaPublic = "grpckit_public"
)

// maxMetaValue is Consul's limit on the length of a meta value.
const maxMetaValue = 512

// maxPublicKeys bounds the keys MetaPublic spreads over (Consul allows 64
// meta pairs in all).
const maxPublicKeys = 16

// apiMeta returns the meta entries of srv's API and of the public methods
// of a, to add to a registration; a nil a checks no token.
func apiMeta(srv *grpc.Server, a *auth.Authenticator) (map[string]string, error) {
	meta := map[string]string{}
	if fp := apiFingerprint(srv); fp != "" {
		meta[MetaAPI] = fp
	}
	public := []string{"*"}
	if a != nil {
		public = a.Config().PublicMethods
	}
	var chunks []string
	var cur strings.Builder
	for _, m := range public {
		if len(m) > maxMetaValue {
			return nil, fmt.Errorf("kit: auth.public_methods %q is longer than a Consul meta value (%d bytes)", m, maxMetaValue)
		}
		if cur.Len() > 0 && cur.Len()+1+len(m) > maxMetaValue {
			chunks = append(chunks, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(',')
		}
		cur.WriteString(m)
	}
	if cur.Len() > 0 {
		chunks = append(chunks, cur.String())
	}
	if len(chunks) > maxPublicKeys {
		return nil, fmt.Errorf("kit: auth.public_methods is too long to publish in Consul meta (over %d values of %d bytes)", maxPublicKeys, maxMetaValue)
	}
	for i, c := range chunks {
		meta[publicKey(i)] = c
	}
	return meta, nil
}

// publicKey is the meta key of the i-th part of the public method list.
func publicKey(i int) string {
	if i == 0 {
		return MetaPublic
	}
	return MetaPublic + "_" + strconv.Itoa(i)
}

// PublicMethods returns the public method patterns a registration's meta
// publishes (see [MetaPublic]): "/pkg.Service/Method", "/pkg.Service/*",
// or "*" for every method. It reads the parts in order and stops at the
// first missing one.
func PublicMethods(meta map[string]string) []string {
	var out []string
	for i := range maxPublicKeys {
		v, ok := meta[publicKey(i)]
		if !ok {
			break
		}
		for m := range strings.SplitSeq(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

// apiFingerprint hashes the proto files of the services srv serves, with
// their transitive imports, as registered in protoregistry.GlobalFiles
// (generated code registers them); "" when none is found.
func apiFingerprint(srv *grpc.Server) string {
	files := map[string]protoreflect.FileDescriptor{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if _, ok := files[f.Path()]; ok {
			return
		}
		files[f.Path()] = f
		imports := f.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
	}
	for name := range srv.GetServiceInfo() {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue // a service without a registered descriptor: not part of the fingerprint
		}
		add(d.ParentFile())
	}
	if len(files) == 0 {
		return ""
	}
	h := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(protodesc.ToFileDescriptorProto(files[p]))
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
