package openapi

import (
	"strings"
	"testing"
)

// FuzzBuild: whatever the path, path parameters, method and bodies of an
// operation (they come from the annotations of services the gateway
// discovers), Build does not panic, and a document it returns is valid.
func FuzzBuild(f *testing.F) {
	f.Add("GET", "/v1/rich/{inner.label}", "inner.label", "", "")
	f.Add("POST", "/v1/rich/{name}:publish", "name", "*", "inner")
	f.Add("PUT", "/v1/{i64}/x/{inner.parent.name}", "i64,inner.parent.name", "child", "")
	f.Add("PURGE", "/v1/{color}", "color", "", "")
	f.Add("GET", "/v1/{when}/{", "when", "", "")
	f.Fuzz(func(t *testing.T, method, path, params, body, responseBody string) {
		op := richOps(t)[0]
		op.Method, op.Path, op.Body, op.ResponseBody = method, path, body, responseBody
		op.PathParams = nil
		if params != "" {
			op.PathParams = strings.Split(params, ",")
		}
		doc, err := Build(Info{Title: "fuzz", Version: "1"}, []Operation{op})
		if err != nil {
			return
		}
		validate(t, doc)
	})
}
