package gateway

import (
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// hostileReflection is a reflection server that lists one service and
// answers every file request with one file importing many files it never
// sends.
type hostileReflection struct {
	reflectionpb.UnimplementedServerReflectionServer
	file []byte
}

func (h *hostileReflection) ServerReflectionInfo(s reflectionpb.ServerReflection_ServerReflectionInfoServer) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		resp := &reflectionpb.ServerReflectionResponse{}
		if _, ok := req.GetMessageRequest().(*reflectionpb.ServerReflectionRequest_ListServices); ok {
			resp.MessageResponse = &reflectionpb.ServerReflectionResponse_ListServicesResponse{
				ListServicesResponse: &reflectionpb.ListServiceResponse{Service: []*reflectionpb.ServiceResponse{{Name: "evil.v1.S"}}},
			}
		} else {
			resp.MessageResponse = &reflectionpb.ServerReflectionResponse_FileDescriptorResponse{
				FileDescriptorResponse: &reflectionpb.FileDescriptorResponse{FileDescriptorProto: [][]byte{h.file}},
			}
		}
		if err := s.Send(resp); err != nil {
			return nil
		}
	}
}

// TestReflectHostileImports: a server whose file imports 100,000 files it
// never sends is refused at once, not after work quadratic in the imports
// (which the call's deadline would not stop).
func TestReflectHostileImports(t *testing.T) {
	fd := &descriptorpb.FileDescriptorProto{Name: proto.String("evil.proto"), Package: proto.String("evil.v1")}
	for i := range 100_000 {
		fd.Dependency = append(fd.Dependency, "d"+strconv.Itoa(i)+".proto")
	}
	b, err := proto.Marshal(fd)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	reflectionpb.RegisterServerReflectionServer(gs, &hostileReflection{file: b})
	cc := dialBufconn(t, serveBufconn(t, gs))
	start := time.Now()
	if _, _, err := Reflect(t.Context(), cc); err == nil {
		t.Fatal("Reflect succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Reflect took %v, want it refused at once", d)
	}
}
