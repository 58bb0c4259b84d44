package httprule

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// parseValue returns the value of field fd of parent, or of an element of
// it for a repeated field, that s gives in the string forms of protojson;
// parent only makes the messages of well-known types. On an error it
// returns the reason.
func parseValue(parent protoreflect.Message, fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, string) {
	if fd.Message() == nil {
		return parseScalar(fd, s)
	}
	var m protoreflect.Message
	if fd.IsList() {
		m = parent.NewField(fd).List().NewElement().Message()
	} else {
		m = parent.NewField(fd).Message()
	}
	if reason := parseMessage(m, s); reason != "" {
		return protoreflect.Value{}, reason
	}
	return protoreflect.ValueOfMessage(m), ""
}

// parseScalar returns the value of a field of a scalar kind that s gives.
func parseScalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, string) {
	kind := fd.Kind()
	invalid := func() (protoreflect.Value, string) {
		return protoreflect.Value{}, "invalid value " + quote(s) + " for " + kind.String()
	}
	switch kind {
	case protoreflect.StringKind:
		if !utf8.ValidString(s) {
			return protoreflect.Value{}, "value " + quote(s) + " is not valid UTF-8"
		}
		return protoreflect.ValueOfString(s), ""
	case protoreflect.BytesKind:
		b, ok := parseBytes(s)
		if !ok {
			return invalid()
		}
		return protoreflect.ValueOfBytes(b), ""
	case protoreflect.BoolKind:
		switch s {
		case "true":
			return protoreflect.ValueOfBool(true), ""
		case "false":
			return protoreflect.ValueOfBool(false), ""
		}
		return invalid()
	case protoreflect.EnumKind:
		return parseEnum(fd.Enum(), s)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, ok := parseInt(s, 32)
		if !ok {
			return invalid()
		}
		return protoreflect.ValueOfInt32(int32(n)), ""
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, ok := parseInt(s, 64)
		if !ok {
			return invalid()
		}
		return protoreflect.ValueOfInt64(n), ""
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return invalid()
		}
		return protoreflect.ValueOfUint32(uint32(n)), ""
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return invalid()
		}
		return protoreflect.ValueOfUint64(n), ""
	case protoreflect.FloatKind:
		f, ok := parseFloat(s, 32)
		if !ok {
			return invalid()
		}
		return protoreflect.ValueOfFloat32(float32(f)), ""
	case protoreflect.DoubleKind:
		f, ok := parseFloat(s, 64)
		if !ok {
			return invalid()
		}
		return protoreflect.ValueOfFloat64(f), ""
	}
	return protoreflect.Value{}, "a string cannot set a field of kind " + kind.String()
}

// parseInt parses a decimal integer of bits bits: strconv's form without
// a "+".
func parseInt(s string, bits int) (int64, bool) {
	if strings.HasPrefix(s, "+") {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, bits)
	return n, err == nil
}

// parseFloat parses a float of bits bits in protojson's string form: a JSON
// number in range, "NaN", "Infinity" or "-Infinity".
func parseFloat(s string, bits int) (float64, bool) {
	switch s {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	if !isJSONNumber(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, bits)
	return f, err == nil
}

// isJSONNumber reports whether s is a number of JSON (RFC 8259):
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if n := digits(); n == 0 || n > 1 && s[i-n] == '0' {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// parseBytes decodes base64 as protojson does: the URL alphabet when s has
// "-" or "_", else the standard one, padded or not.
func parseBytes(s string) ([]byte, bool) {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.DecodeString(s)
	return b, err == nil
}

// parseEnum returns the enum value named s, or numbered s.
func parseEnum(ed protoreflect.EnumDescriptor, s string) (protoreflect.Value, string) {
	if v := ed.Values().ByName(protoreflect.Name(s)); v != nil {
		return protoreflect.ValueOfEnum(v.Number()), ""
	}
	if n, ok := parseInt(s, 32); ok && (!ed.IsClosed() || ed.Values().ByNumber(protoreflect.EnumNumber(n)) != nil) {
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), ""
	}
	return protoreflect.Value{}, "unknown value " + quote(s) + " of enum " + string(ed.FullName())
}

// Full names of the well-known message types that a string can set.
const (
	timestampName = "google.protobuf.Timestamp"
	durationName  = "google.protobuf.Duration"
	fieldMaskName = "google.protobuf.FieldMask"
)

// wrappers are the well-known wrapper types, whose field "value" has the
// string form of its kind.
var wrappers = map[protoreflect.FullName]bool{
	"google.protobuf.DoubleValue": true,
	"google.protobuf.FloatValue":  true,
	"google.protobuf.Int64Value":  true,
	"google.protobuf.UInt64Value": true,
	"google.protobuf.Int32Value":  true,
	"google.protobuf.UInt32Value": true,
	"google.protobuf.BoolValue":   true,
	"google.protobuf.StringValue": true,
	"google.protobuf.BytesValue":  true,
}

// isScalarMessage reports whether md is a well-known type with a string
// form: a wrapper, Timestamp, Duration or FieldMask.
func isScalarMessage(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case timestampName, durationName, fieldMaskName:
		return true
	}
	return wrappers[md.FullName()]
}

// parseMessage sets m, an empty message of a type that isScalarMessage
// accepts, from s.
func parseMessage(m protoreflect.Message, s string) string {
	md := m.Descriptor()
	fields := md.Fields()
	invalid := func() string {
		return "invalid value " + quote(s) + " for " + string(md.FullName())
	}
	switch md.FullName() {
	case timestampName:
		t, err := time.Parse(time.RFC3339Nano, s)
		// protojson's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
		if err != nil || t.Unix() < -62135596800 || t.Unix() > 253402300799 {
			return invalid()
		}
		m.Set(fields.ByName("seconds"), protoreflect.ValueOfInt64(t.Unix()))
		m.Set(fields.ByName("nanos"), protoreflect.ValueOfInt32(int32(t.Nanosecond())))
	case durationName:
		secs, nanos, ok := parseDuration(s)
		if !ok {
			return invalid()
		}
		m.Set(fields.ByName("seconds"), protoreflect.ValueOfInt64(secs))
		m.Set(fields.ByName("nanos"), protoreflect.ValueOfInt32(nanos))
	case fieldMaskName:
		paths, ok := parseFieldMask(s)
		if !ok {
			return invalid()
		}
		list := m.Mutable(fields.ByName("paths")).List()
		for _, p := range paths {
			list.Append(protoreflect.ValueOfString(p))
		}
	default: // a wrapper
		fd := fields.ByName("value")
		v, reason := parseScalar(fd, s)
		if reason != "" {
			return reason
		}
		m.Set(fd, v)
	}
	return ""
}

// maxDurationSeconds is the largest number of seconds of a
// google.protobuf.Duration: about 10,000 years.
const maxDurationSeconds = 315576000000

// parseDuration parses protojson's form of a google.protobuf.Duration: an
// optional "-", decimal seconds with at most 9 decimals, and "s".
func parseDuration(s string) (secs int64, nanos int32, ok bool) {
	s, ok = strings.CutSuffix(s, "s")
	if !ok {
		return 0, 0, false
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || hasFrac && (frac == "" || len(frac) > 9 || !allDigits(frac)) {
		return 0, 0, false
	}
	secs, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || secs > maxDurationSeconds {
		return 0, 0, false
	}
	if frac != "" {
		n, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 32)
		nanos = int32(n)
	}
	if neg {
		secs, nanos = -secs, -nanos
	}
	return secs, nanos, true
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseFieldMask parses the paths of a google.protobuf.FieldMask, separated
// by commas: each a dot-separated path of proto names, or of lowerCamelCase
// names (a path without "_"), which are turned into proto names as
// protojson does. "" is no path.
func parseFieldMask(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, true
	}
	paths := strings.Split(s, ",")
	for i, p := range paths {
		if !strings.Contains(p, "_") {
			p = snakeCase(p)
		}
		if !protoreflect.FullName(p).IsValid() {
			return nil, false
		}
		paths[i] = p
	}
	return paths, true
}

// snakeCase turns a lowerCamelCase name into a proto name, as protojson
// does: "fooBar.baz" is "foo_bar.baz".
func snakeCase(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// quote quotes s for an error, shortened to its first 64 bytes.
func quote(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit]) + "..."
}
