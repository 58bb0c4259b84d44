package openapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestQueryParametersBounded: a GET whose input nests wide messages (a DAG,
// not a recursion; from a hostile or merely large backend) has at most
// maxQueryFields query parameters, instead of width^MaxQueryDepth: the
// document is built at once, and stays valid.
func TestQueryParametersBounded(t *testing.T) {
	const width, depth = 12, 5 // 12^5 = 248832 leaves
	var src strings.Builder
	src.WriteString("syntax = \"proto3\";\npackage wide.v1;\n")
	for d := range depth {
		fmt.Fprintf(&src, "message M%d {\n", d)
		for i := range width {
			if d == depth-1 {
				fmt.Fprintf(&src, "  string f%d = %d;\n", i, i+1)
			} else {
				fmt.Fprintf(&src, "  M%d f%d = %d;\n", d+1, i, i+1)
			}
		}
		src.WriteString("}\n")
	}
	src.WriteString("service S { rpc Get(M0) returns (M0); }\n")
	m := compileProto(t, "wide.proto", src.String()).Services().ByName("S").Methods().ByName("Get")
	doc := build(t, []Operation{{Method: "GET", Path: "/v1/wide", Input: m.Input(), Output: m.Output(),
		Service: "wide.v1.S", RPC: "/wide.v1.S/Get", OperationID: "wide.v1.S.Get"}})
	params, _ := at(t, doc, "/paths/~1v1~1wide/get/parameters").([]any)
	if len(params) == 0 || len(params) > 1000 { // maxQueryFields
		t.Errorf("%d query parameters, want 1 to 1000", len(params))
	}
	if got, want := at(t, doc, "/paths/~1v1~1wide/get/parameters/0/name"), "f0.f0.f0.f0.f0"; got != want {
		t.Errorf("first parameter %v, want %s", got, want)
	}
}
