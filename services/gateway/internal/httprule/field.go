package httprule

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxFieldDepth is the number of names in the longest field path that
// [SetField] and [SetQuery] accept ("a.b.c" has 3). Deeper paths are refused
// before any work that depends on their length.
const MaxFieldDepth = 32

// A FieldError is the error of [SetField] and [SetQuery] for a field path or
// a value that a request message cannot take: the answer is a 400 whose
// google.rpc.BadRequest names the field.
type FieldError struct {
	Field  string // the field path as the request wrote it ("sub.subfield", "pageSize")
	Reason string // what is wrong, for the client: "unknown field", `invalid value "x" for int32`
}

// Error returns the field and the reason.
func (e *FieldError) Error() string {
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

// SetField sets the field of msg at fieldPath from values, in the string
// forms of protojson. fieldPath is a dot-separated path of field names,
// each a proto name or a JSON (lowerCamelCase) name; the messages on the way
// are created when unset. The field at its end is:
//
//   - string (valid UTF-8), bytes (standard or URL base64, padded or not),
//     bool ("true" or "false");
//   - an integer of any kind, in decimal with an optional "-", in range;
//   - float or double: a JSON number, "NaN", "Infinity" or "-Infinity";
//   - an enum: a value's name, or a number (a known one for a closed enum);
//   - a well-known wrapper (google.protobuf.StringValue, Int64Value,
//     BoolValue, ...), taking its value's form; google.protobuf.Timestamp
//     (RFC 3339, "2006-01-02T15:04:05.999999999Z07:00"),
//     google.protobuf.Duration ("1.5s", "-3s"), google.protobuf.FieldMask
//     (comma-separated paths, proto names or lowerCamelCase ones that are
//     turned into proto names).
//
// A repeated field appends every value; any other field takes exactly one
// value, and is refused when it is already set (has presence and is set)
// or when it is in a oneof that has another field set. Map fields, other
// messages and paths through repeated fields are refused. Every error is a
// [*FieldError] naming fieldPath, and leaves msg unchanged.
//
// SetField is not safe for concurrent use with other uses of msg.
func SetField(msg protoreflect.Message, fieldPath string, values ...string) error {
	fds, reason := resolve(msg.Descriptor(), fieldPath)
	if reason != "" {
		return &FieldError{Field: fieldPath, Reason: reason}
	}
	return set(msg, fieldPath, fds, values)
}

// SetQuery sets the fields of msg from the parameters of a request's query,
// each key a field path and its values the field's, as [SetField] does,
// in the order of the sorted keys so that the first error, the one
// returned, is always the same. bound reports whether a field path (in
// proto names, whatever the names used in q) is bound by the request's
// path or body; SetQuery refuses a key whose field path, or any prefix of
// it, is bound ("a.b" when "a" is); a nil bound binds nothing. Every error
// is a [*FieldError] naming the key. On an error msg may have taken the
// values of the keys sorted before it.
//
// The work is linear in the size of q: a key deeper than [MaxFieldDepth]
// is refused at once.
func SetQuery(msg protoreflect.Message, q url.Values, bound func(fieldPath string) bool) error {
	md := msg.Descriptor()
	for _, key := range slices.Sorted(maps.Keys(q)) {
		fds, reason := resolve(md, key)
		var path strings.Builder
		for i, fd := range fds {
			if i > 0 {
				path.WriteByte('.')
			}
			path.WriteString(string(fd.Name()))
			if bound != nil && bound(path.String()) {
				return &FieldError{Field: key, Reason: "is bound by the path or body"}
			}
		}
		if reason != "" {
			return &FieldError{Field: key, Reason: reason}
		}
		if err := set(msg, key, fds, q[key]); err != nil {
			return err
		}
	}
	return nil
}

// resolve returns the fields of the path from md. On an error, it returns
// the reason and the fields resolved before.
func resolve(md protoreflect.MessageDescriptor, fieldPath string) ([]protoreflect.FieldDescriptor, string) {
	if fieldPath == "" {
		return nil, "empty field path"
	}
	if strings.Count(fieldPath, ".") >= MaxFieldDepth {
		return nil, fmt.Sprintf("field path of more than %d names", MaxFieldDepth)
	}
	var fds []protoreflect.FieldDescriptor
	for name := range strings.SplitSeq(fieldPath, ".") {
		if len(fds) > 0 {
			parent := fds[len(fds)-1]
			switch {
			case parent.IsMap():
				return fds, fmt.Sprintf("%q is a map field", parent.Name())
			case parent.IsList():
				return fds, fmt.Sprintf("%q is a repeated field", parent.Name())
			case parent.Message() == nil:
				return fds, fmt.Sprintf("%q is not a message field", parent.Name())
			}
			md = parent.Message()
		}
		if name == "" {
			return fds, "empty field name"
		}
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			fd = md.Fields().ByJSONName(name)
		}
		if fd == nil {
			return fds, fmt.Sprintf("unknown field %q in %s", name, md.FullName())
		}
		fds = append(fds, fd)
	}
	return fds, ""
}

// set sets the field at the end of fds, the fields of fieldPath, from
// values, as SetField says.
func set(msg protoreflect.Message, fieldPath string, fds []protoreflect.FieldDescriptor, values []string) error {
	fail := func(format string, args ...any) error {
		return &FieldError{Field: fieldPath, Reason: fmt.Sprintf(format, args...)}
	}
	leaf := fds[len(fds)-1]
	switch {
	case leaf.IsMap():
		return fail("is a map field, which a string cannot set")
	case leaf.Message() != nil && !isScalarMessage(leaf.Message()):
		return fail("is a message field (%s), which a string cannot set", leaf.Message().FullName())
	case len(values) == 0:
		return fail("no value")
	case !leaf.IsList() && len(values) > 1:
		return fail("takes one value, got %d", len(values))
	}

	// Check everything before changing msg.
	parent := msg
	for i, fd := range fds {
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if other := parent.WhichOneof(od); other != nil && other.Number() != fd.Number() {
				return fail("%q is in oneof %q, whose field %q is set", fd.Name(), od.Name(), other.Name())
			}
		}
		if i == len(fds)-1 {
			break
		}
		parent = parent.Get(fd).Message()
	}
	if !leaf.IsList() && parent.Has(leaf) {
		return fail("is set already")
	}
	if !parent.IsValid() { // an unset message, which cannot make values
		parent = parent.Type().New()
	}
	vals := make([]protoreflect.Value, len(values))
	for i, s := range values {
		v, reason := parseValue(parent, leaf, s)
		if reason != "" {
			return fail("%s", reason)
		}
		vals[i] = v
	}

	parent = msg
	for _, fd := range fds[:len(fds)-1] {
		parent = parent.Mutable(fd).Message()
	}
	if !leaf.IsList() {
		parent.Set(leaf, vals[0])
		return nil
	}
	list := parent.Mutable(leaf).List()
	for _, v := range vals {
		list.Append(v)
	}
	return nil
}
