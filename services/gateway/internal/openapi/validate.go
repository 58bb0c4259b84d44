package openapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

var (
	// ErrInvalidOperation is returned, wrapped, by [Build] for an operation
	// it cannot document: a field missing, a path that is not a path, path
	// parameters that differ from the path's variables or are not singular
	// scalar fields of the input, a body or response_body that is not a
	// top-level field.
	ErrInvalidOperation = errors.New("openapi: invalid operation")
	// ErrConflict is returned, wrapped, by [Build] for operations that
	// cannot be in one document: two with one operation id, two with one
	// method and path, or two documented paths that differ only in the
	// names of their variables ("/v1/{name}" and "/v1/{id}").
	ErrConflict = errors.New("openapi: conflicting operations")
	// ErrInvalidInfo is returned, wrapped, by [Build] for an [Info] without
	// a title or a version.
	ErrInvalidInfo = errors.New("openapi: invalid info")
	// ErrNameClash is returned, wrapped, by [Build] when a proto message or
	// enum without a package has the name of one of the package's own
	// schemas ("Error", "ErrorDetail").
	ErrNameClash = errors.New("openapi: schema name clash")
)

// errorf returns an error that wraps sentinel, with a message after it.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// checkOperations returns why ops cannot be documented together, or nil.
func checkOperations(ops []Operation) error {
	ids := map[string]bool{}
	routes := map[string]bool{}
	shapes := map[string]string{} // path without variable names → path
	for i := range ops {
		op := &ops[i]
		if err := checkOperation(op); err != nil {
			return err
		}
		if ids[op.OperationID] {
			return errorf(ErrConflict, "operation id %s is used twice", op.OperationID)
		}
		ids[op.OperationID] = true
		route := op.Method + " " + op.Path
		if routes[route] {
			return errorf(ErrConflict, "%s is bound twice (%s)", route, op.OperationID)
		}
		routes[route] = true
		if _, documented := pathItemKey(op.Method); !documented {
			continue
		}
		shape := pathShape(op.Path)
		if other, ok := shapes[shape]; ok && other != op.Path {
			return errorf(ErrConflict, "paths %s and %s differ only in the names of their variables (%s)", other, op.Path, op.OperationID)
		}
		shapes[shape] = op.Path
	}
	return nil
}

// checkOperation returns why op cannot be documented, or nil.
func checkOperation(op *Operation) error {
	fail := func(format string, args ...any) error {
		return errorf(ErrInvalidOperation, "%s (%s %s): %s", op.OperationID, op.Method, op.Path, fmt.Sprintf(format, args...))
	}
	switch {
	case op.OperationID == "":
		return fail("no operation id")
	case op.Method == "" || op.Method != strings.ToUpper(op.Method) || strings.ContainsAny(op.Method, " \t/{}"):
		return fail("method %q is not an upper-case HTTP method", op.Method)
	case op.Input == nil || op.Output == nil:
		return fail("no input or output message")
	case op.Service == "":
		return fail("no service")
	}
	vars, err := pathVariables(op.Path)
	if err != nil {
		return fail("%v", err)
	}
	if !slices.Equal(vars, op.PathParams) {
		return fail("path variables %q differ from the path parameters %q", vars, op.PathParams)
	}
	for _, param := range op.PathParams {
		fd, err := lookupField(op.Input, param)
		if err != nil {
			return fail("path parameter %s: %v", param, err)
		}
		if fd.IsList() || fd.IsMap() || !isLeaf(fd) {
			return fail("path parameter %s is not a singular scalar field", param)
		}
		if op.Body != "" && op.Body != "*" && param == op.Body {
			return fail("field %s is both the body and a path parameter", param)
		}
	}
	if op.Body != "" && op.Body != "*" && op.Input.Fields().ByName(protoreflect.Name(op.Body)) == nil {
		return fail("body %q is not a field of %s", op.Body, op.Input.FullName())
	}
	if op.ResponseBody != "" && op.Output.Fields().ByName(protoreflect.Name(op.ResponseBody)) == nil {
		return fail("response body %q is not a field of %s", op.ResponseBody, op.Output.FullName())
	}
	return nil
}

// pathVariables returns the names of the variables of an OpenAPI path
// ("/v1/{parent}/books/{book.id}" → parent, book.id), in order.
func pathVariables(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q does not start with /", path)
	}
	var vars []string
	for rest := path; ; {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			return vars, nil
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("path %q has a } without {", path)
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] == '{' {
			return nil, fmt.Errorf("path %q has a { without }", path)
		}
		name := rest[open+1 : open+1+end]
		if name == "" {
			return nil, fmt.Errorf("path %q has an empty variable", path)
		}
		vars = append(vars, name)
		rest = rest[open+1+end+1:]
	}
}

// pathShape returns path with its variables unnamed ("/v1/{}"): OpenAPI
// holds two paths of one shape for the same path.
func pathShape(path string) string {
	var b strings.Builder
	inVar := false
	for _, r := range path {
		switch {
		case r == '{':
			inVar = true
			b.WriteString("{}")
		case r == '}':
			inVar = false
		case !inVar:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// lookupField returns the field of md that a field path ("book.id") names,
// through singular fields of messages that are not well-known types.
func lookupField(md protoreflect.MessageDescriptor, path string) (protoreflect.FieldDescriptor, error) {
	names := strings.Split(path, ".")
	last := len(names) - 1
	for _, name := range names[:last] {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, fmt.Errorf("%s is not a field of %s", name, md.FullName())
		}
		if fd.Message() == nil || fd.IsList() || fd.IsMap() || isWellKnown(fd.Message()) {
			return nil, fmt.Errorf("%s of %s is not a singular message field", name, md.FullName())
		}
		md = fd.Message()
	}
	fd := md.Fields().ByName(protoreflect.Name(names[last]))
	if fd == nil {
		return nil, fmt.Errorf("%s is not a field of %s", names[last], md.FullName())
	}
	return fd, nil
}

// isLeaf reports whether a value of fd's type is written as a JSON scalar,
// so that it can be a path or query parameter: a scalar, an enum other
// than NullValue, or a well-known type written as a string or number.
func isLeaf(fd protoreflect.FieldDescriptor) bool {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return isScalarLike(fd.Message())
	case protoreflect.EnumKind:
		return fd.Enum().FullName() != nullValueName
	}
	return true
}
