package openapi

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// schema is an OpenAPI 3.0 Schema Object, with the keywords this package
// writes. A schema with Ref set has no other keyword.
type schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	Description          string             `json:"description,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	Enum                 []string           `json:"enum,omitempty"`
	AllOf                []*schema          `json:"allOf,omitempty"`
	Items                *schema            `json:"items,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Properties           map[string]*schema `json:"properties,omitempty"`
	AdditionalProperties *schema            `json:"additionalProperties,omitempty"`
	Example              any                `json:"example,omitempty"`
}

// anyValue returns the schema of any JSON value, null included.
func anyValue() *schema { return &schema{Nullable: true} }

// refTo returns a $ref to the component schema name.
func refTo(name string) *schema { return &schema{Ref: "#/components/schemas/" + name} }

// scalarSchema returns the schema of a field kind that is neither a message
// nor an enum, as protojson writes it.
func scalarSchema(k protoreflect.Kind) *schema {
	switch k {
	case protoreflect.BoolKind:
		return &schema{Type: "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return &schema{Type: "integer", Format: "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return &schema{Type: "integer", Format: "uint32"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return &schema{Type: "string", Format: "int64"}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return &schema{Type: "string", Format: "uint64"}
	case protoreflect.FloatKind:
		return &schema{Type: "number", Format: "float"}
	case protoreflect.DoubleKind:
		return &schema{Type: "number", Format: "double"}
	case protoreflect.BytesKind:
		return &schema{Type: "string", Format: "byte"}
	}
	return &schema{Type: "string"}
}

// Full names of the well-known types with a JSON form of their own.
const (
	timestampName = "google.protobuf.Timestamp"
	durationName  = "google.protobuf.Duration"
	structName    = "google.protobuf.Struct"
	valueName     = "google.protobuf.Value"
	listValueName = "google.protobuf.ListValue"
	anyName       = "google.protobuf.Any"
	fieldMaskName = "google.protobuf.FieldMask"
	emptyName     = "google.protobuf.Empty"
	nullValueName = "google.protobuf.NullValue"
)

// isWrapper reports whether md is one of the google.protobuf wrappers
// (StringValue, Int64Value, ...), written as their value field.
func isWrapper(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		return true
	}
	return false
}

// wellKnownSchema returns the inline schema of a well-known message type,
// a new one on each call, and false for any other message.
func wellKnownSchema(md protoreflect.MessageDescriptor) (*schema, bool) {
	if isWrapper(md) {
		return scalarSchema(md.Fields().ByNumber(1).Kind()), true
	}
	switch md.FullName() {
	case timestampName:
		return &schema{Type: "string", Format: "date-time"}, true
	case durationName:
		return &schema{
			Type:        "string",
			Pattern:     `^-?[0-9]+(\.[0-9]{1,9})?s$`,
			Description: `A duration in seconds with an "s" suffix, e.g. "1.5s".`,
		}, true
	case structName:
		return &schema{Type: "object", AdditionalProperties: anyValue()}, true
	case valueName:
		return anyValue(), true
	case listValueName:
		return &schema{Type: "array", Items: anyValue()}, true
	case anyName:
		return &schema{
			Type:                 "object",
			Description:          `A message of any type: "@type" names it, the other members are its fields.`,
			Required:             []string{"@type"},
			Properties:           map[string]*schema{"@type": {Type: "string"}},
			AdditionalProperties: anyValue(),
		}, true
	case fieldMaskName:
		return &schema{Type: "string", Description: "Field paths in lowerCamelCase, separated by commas."}, true
	case emptyName:
		return &schema{Type: "object"}, true
	}
	return nil, false
}

// isWellKnown reports whether md is a well-known type with a JSON form of
// its own.
func isWellKnown(md protoreflect.MessageDescriptor) bool {
	_, ok := wellKnownSchema(md)
	return ok
}

// isScalarLike reports whether a message type is written as a JSON scalar
// (a string, number or boolean), so that it can be a path or query
// parameter.
func isScalarLike(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case timestampName, durationName, fieldMaskName:
		return true
	}
	return isWrapper(md)
}

// schemas collects components.schemas while operations are described.
// Its zero value is not ready: use newSchemas.
type schemas struct {
	byName map[string]*schema
	err    error // the first name clash, reported by Build
}

// newSchemas returns schemas holding the fixed ones (the error body).
func newSchemas() *schemas {
	s := &schemas{byName: map[string]*schema{}}
	for name, sc := range fixedSchemas() {
		s.byName[name] = sc
	}
	return s
}

// message returns the schema of a value of message type md: an inline one
// for a well-known type, otherwise a $ref to the message's component,
// which it adds (with the components of its fields) on first use.
func (s *schemas) message(md protoreflect.MessageDescriptor) *schema {
	if wk, ok := wellKnownSchema(md); ok {
		return wk
	}
	name := string(md.FullName())
	if _, ok := s.byName[name]; !ok {
		sc := &schema{} // in the map before its fields are described: a recursive message refers to itself
		s.byName[name] = sc
		*sc = s.describeMessage(md, nil)
	} else if isFixedSchema(name) {
		s.clash(name)
	}
	return refTo(name)
}

// enum returns the schema of a value of enum type ed: a $ref to the enum's
// component, added on first use. NullValue, always written as null, is an
// inline nullable schema.
func (s *schemas) enum(ed protoreflect.EnumDescriptor) *schema {
	if ed.FullName() == nullValueName {
		return &schema{Nullable: true, Description: "Always null (google.protobuf.NullValue)."}
	}
	name := string(ed.FullName())
	if _, ok := s.byName[name]; !ok {
		s.byName[name] = describeEnum(ed)
	} else if isFixedSchema(name) {
		s.clash(name)
	}
	return refTo(name)
}

// clash records that a proto type has the name of one of the fixed schemas.
func (s *schemas) clash(name string) {
	if s.err == nil {
		s.err = errorf(ErrNameClash, "a proto type without a package is named %s", name)
	}
}

// value returns the schema of one value of fd: of an element when fd is
// repeated.
func (s *schemas) value(fd protoreflect.FieldDescriptor) *schema {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return s.message(fd.Message())
	case protoreflect.EnumKind:
		return s.enum(fd.Enum())
	}
	return scalarSchema(fd.Kind())
}

// field returns the schema of field fd as a property of its message.
func (s *schemas) field(fd protoreflect.FieldDescriptor) *schema {
	var sc *schema
	switch {
	case fd.IsMap():
		sc = &schema{Type: "object", AdditionalProperties: s.value(fd.MapValue())}
	case fd.IsList():
		sc = &schema{Type: "array", Items: s.value(fd)}
	default:
		sc = s.value(fd)
		if fd.Message() != nil {
			sc = nullable(sc) // protojson writes an unset message field as null
		}
	}
	if sc.Ref == "" {
		sc.Description = joinText(sc.Description, comment(fd))
	}
	return sc
}

// bodyField returns the schema of field fd as a whole body (a body: or
// response_body: field): a message is never null there.
func (s *schemas) bodyField(fd protoreflect.FieldDescriptor) *schema {
	if fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
		sc := s.value(fd)
		if sc.Ref == "" {
			sc.Description = joinText(sc.Description, comment(fd))
		}
		return sc
	}
	return s.field(fd)
}

// nullable returns sc that also allows null: OpenAPI 3.0 allows nothing
// beside a $ref, so a $ref goes into an allOf.
func nullable(sc *schema) *schema {
	if sc.Ref != "" {
		return &schema{AllOf: []*schema{sc}, Nullable: true}
	}
	sc.Nullable = true
	return sc
}

// describeMessage returns the schema of message md: an object with a
// property per field, by proto name, but the omitted ones (the path fields
// of a body).
func (s *schemas) describeMessage(md protoreflect.MessageDescriptor, omit []string) schema {
	sc := schema{Type: "object", Properties: map[string]*schema{}}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !slices.Contains(omit, string(fd.Name())) {
			sc.Properties[string(fd.Name())] = s.field(fd)
		}
	}
	title := string(md.FullName())
	if len(omit) > 0 {
		title += " without the fields that the path sets: " + strings.Join(omit, ", ") + "."
	}
	text := []string{title, comment(md)}
	oneofs := md.Oneofs()
	for i := range oneofs.Len() {
		if od := oneofs.Get(i); !od.IsSynthetic() {
			text = append(text, "Oneof "+string(od.Name())+": at most one of "+fieldNames(od.Fields())+" is set.")
		}
	}
	sc.Description = joinText(text...)
	return sc
}

// describeEnum returns the component schema of enum ed: a string, one of
// the value names.
func describeEnum(ed protoreflect.EnumDescriptor) *schema {
	sc := &schema{Type: "string", Description: joinText(string(ed.FullName()), comment(ed))}
	values := ed.Values()
	for i := range values.Len() {
		sc.Enum = append(sc.Enum, string(values.Get(i).Name()))
	}
	return sc
}

// comment returns the leading comment of d, when its file carries source
// information.
func comment(d protoreflect.Descriptor) string {
	return strings.TrimSpace(d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments)
}

// joinText joins the non-empty paragraphs of a description.
func joinText(paragraphs ...string) string {
	var b strings.Builder
	for _, p := range paragraphs {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(p)
	}
	return b.String()
}

// fieldNames lists the proto names of fields, separated by commas.
func fieldNames(fields protoreflect.FieldDescriptors) string {
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = string(fields.Get(i).Name())
	}
	return strings.Join(names, ", ")
}
