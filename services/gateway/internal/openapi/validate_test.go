package openapi

import (
	"errors"
	"net/http"
	"testing"
)

// TestBuildErrors: an operation Build cannot document is an error, never a
// panic nor a broken document.
func TestBuildErrors(t *testing.T) {
	rich := richOps(t)
	get := rich[0] // GET /v1/rich/{inner.label}, input and output test.v1.Rich
	tests := []struct {
		name   string
		info   Info
		change func(op *Operation) // of a copy of get
		ops    func() []Operation  // instead of change
		want   error
	}{
		{name: "no title", info: Info{Version: "1"}, want: ErrInvalidInfo},
		{name: "no version", info: Info{Title: "t"}, want: ErrInvalidInfo},
		{name: "empty path", change: func(op *Operation) { op.Path, op.PathParams = "", nil }, want: ErrInvalidOperation},
		{name: "relative path", change: func(op *Operation) { op.Path, op.PathParams = "v1/rich", nil }, want: ErrInvalidOperation},
		{name: "unclosed variable", change: func(op *Operation) { op.Path = "/v1/rich/{inner.label" }, want: ErrInvalidOperation},
		{name: "unopened variable", change: func(op *Operation) { op.Path = "/v1/rich/inner.label}" }, want: ErrInvalidOperation},
		{name: "empty variable", change: func(op *Operation) { op.Path, op.PathParams = "/v1/rich/{}", []string{""} }, want: ErrInvalidOperation},
		{name: "params differ from the path", change: func(op *Operation) { op.PathParams = []string{"name"} }, want: ErrInvalidOperation},
		{name: "path param missing", change: func(op *Operation) { op.PathParams = nil }, want: ErrInvalidOperation},
		{name: "path param not in input", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{nope}", []string{"nope"} }, want: ErrInvalidOperation},
		{name: "nested path param not in input", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{inner.nope}", []string{"inner.nope"} }, want: ErrInvalidOperation},
		{name: "path param through a scalar", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{name.x}", []string{"name.x"} }, want: ErrInvalidOperation},
		{name: "path param through a list", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{children.name}", []string{"children.name"} }, want: ErrInvalidOperation},
		{name: "path param inside a timestamp", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{when.seconds}", []string{"when.seconds"} }, want: ErrInvalidOperation},
		{name: "path param repeated", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{tags}", []string{"tags"} }, want: ErrInvalidOperation},
		{name: "path param a message", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{inner}", []string{"inner"} }, want: ErrInvalidOperation},
		{name: "path param a map", change: func(op *Operation) { op.Path, op.PathParams = "/v1/{totals}", []string{"totals"} }, want: ErrInvalidOperation},
		{name: "body not a field", change: func(op *Operation) { op.Method, op.Body = http.MethodPost, "nope" }, want: ErrInvalidOperation},
		{name: "body a nested field", change: func(op *Operation) { op.Method, op.Body = http.MethodPost, "inner.count" }, want: ErrInvalidOperation},
		{name: "body the path field", change: func(op *Operation) { op.Path, op.PathParams, op.Body = "/v1/{name}", []string{"name"}, "name" }, want: ErrInvalidOperation},
		{name: "response body not a field", change: func(op *Operation) { op.ResponseBody = "nope" }, want: ErrInvalidOperation},
		{name: "no input", change: func(op *Operation) { op.Input = nil }, want: ErrInvalidOperation},
		{name: "no output", change: func(op *Operation) { op.Output = nil }, want: ErrInvalidOperation},
		{name: "no operation id", change: func(op *Operation) { op.OperationID = "" }, want: ErrInvalidOperation},
		{name: "no service", change: func(op *Operation) { op.Service = "" }, want: ErrInvalidOperation},
		{name: "no method", change: func(op *Operation) { op.Method = "" }, want: ErrInvalidOperation},
		{name: "lower-case method", change: func(op *Operation) { op.Method = "get" }, want: ErrInvalidOperation},
		{name: "duplicate operation id", ops: func() []Operation {
			other := get
			other.Method = http.MethodDelete
			return []Operation{get, other}
		}, want: ErrConflict},
		{name: "duplicate method and path", ops: func() []Operation {
			other := get
			other.OperationID += "_1"
			return []Operation{get, other}
		}, want: ErrConflict},
		{name: "paths that differ in variable names", ops: func() []Operation {
			other := get
			other.Method, other.Path, other.PathParams, other.OperationID = http.MethodDelete, "/v1/rich/{name}", []string{"name"}, "other"
			return []Operation{get, other}
		}, want: ErrConflict},
		{name: "a package-less message named Error", ops: func() []Operation {
			fd := compileProto(t, "error.proto", `syntax = "proto3"; message Error { string text = 1; }`)
			op := get
			op.Output = fd.Messages().ByName("Error")
			return []Operation{op}
		}, want: ErrNameClash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := tt.info
			if info == (Info{}) {
				info = Info{Title: "t", Version: "1"}
			}
			ops := []Operation{get}
			switch {
			case tt.ops != nil:
				ops = tt.ops()
			case tt.change != nil:
				tt.change(&ops[0])
			}
			doc, err := Build(info, ops)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build: %v, want %v", err, tt.want)
			}
			if doc != nil {
				t.Errorf("Build returned a document with its error")
			}
		})
	}
}

// TestBuildNoOperations: no routes is a valid, empty document.
func TestBuildNoOperations(t *testing.T) {
	doc := build(t, nil)
	if paths := at(t, doc, "/paths").(map[string]any); len(paths) != 0 {
		t.Errorf("paths %v", paths)
	}
	if has(doc, "/tags") {
		t.Error("tags without operations")
	}
}
