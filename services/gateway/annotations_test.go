package gateway

import (
	"net/http"
	"slices"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// TestRoutesAreTheAnnotations: the gateway's routes are exactly the
// google.api.http annotations of greeter's and user's methods, so a gateway
// that learns its routes from the annotations serves the same API.
func TestRoutesAreTheAnnotations(t *testing.T) {
	var annotated []string
	for _, fd := range []protoreflect.FileDescriptor{greeterv1.File_greeter_v1_greeter_proto, userv1.File_user_v1_user_proto} {
		for i := range fd.Services().Len() {
			methods := fd.Services().Get(i).Methods()
			for j := range methods.Len() {
				rule, ok := proto.GetExtension(methods.Get(j).Options(), annotations.E_Http).(*annotations.HttpRule)
				if !ok || rule == nil {
					continue
				}
				annotated = append(annotated, httpRoute(t, rule))
			}
		}
	}
	var served []string
	for _, rt := range routes {
		if rt.path != "/openapi.json" {
			served = append(served, rt.method+" "+rt.path)
		}
	}
	slices.Sort(annotated)
	slices.Sort(served)
	if !slices.Equal(annotated, served) {
		t.Errorf("annotated routes %v, gateway routes %v", annotated, served)
	}
}

// httpRoute returns "METHOD /path" of rule.
func httpRoute(t *testing.T, rule *annotations.HttpRule) string {
	t.Helper()
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet + " " + p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost + " " + p.Post
	case *annotations.HttpRule_Patch:
		return http.MethodPatch + " " + p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete + " " + p.Delete
	case *annotations.HttpRule_Put:
		return http.MethodPut + " " + p.Put
	}
	t.Fatalf("unexpected pattern %v", rule)
	return ""
}
