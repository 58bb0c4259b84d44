package httprule

import (
	"fmt"
	"strings"
)

// MaxTemplateLen is the length in bytes of the longest template that
// [ParseTemplate] accepts. Templates come from remote services; the longest
// in Google's APIs are a few hundred bytes.
const MaxTemplateLen = 4096

// A Template is a parsed path template of a google.api.http rule, such as
// "/v1/{name=projects/*/locations/*}:publish". It is immutable and safe for
// concurrent use.
type Template struct {
	segs []segment  // the segments, variables flattened into their patterns
	vars []variable // in the order of the template, over segs
	verb string     // decoded; "" when the template has no verb
}

// segment is one segment of a template.
type segment struct {
	kind segKind
	lit  string // kindLiteral: the literal, percent-decoded
}

// segKind is the kind of a template segment.
type segKind uint8

const (
	kindLiteral    segKind = iota // LITERAL
	kindStar                      // "*": one non-empty segment
	kindDoubleStar                // "**": the rest of the path; always the last segment
)

// variable is a variable of a template: segs[start:end] bind field.
type variable struct {
	field      string
	start, end int
}

// multi reports whether v spans several segments, or any number with "**";
// its value then keeps "%2F" encoded.
func (v variable) multi(segs []segment) bool {
	return v.end-v.start > 1 || segs[v.start].kind == kindDoubleStar
}

// ParseTemplate parses a path template of the grammar of google/api/http.proto
// (see the package documentation). Its errors give the offset in s of the
// problem. The work is linear in len(s), and s is at most [MaxTemplateLen]
// bytes.
func ParseTemplate(s string) (*Template, error) {
	if len(s) > MaxTemplateLen {
		return nil, fmt.Errorf("httprule: template of %d bytes, more than %d", len(s), MaxTemplateLen)
	}
	p := parser{s: s, t: &Template{}}
	if err := p.template(); err != nil {
		return nil, err
	}
	return p.t, nil
}

// parser is the state of [ParseTemplate].
type parser struct {
	s   string
	pos int // offset in s of the next byte to read
	t   *Template

	bound    map[string]bool // field paths of the variables so far
	prefixes map[string]bool // their proper prefixes: "a" and "a.b" for "a.b.c"
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("httprule: template %q, offset %d: %s", p.s, p.pos, fmt.Sprintf(format, args...))
}

// peek returns the next byte, or eof at the end of the template.
func (p *parser) peek() int {
	if p.pos < len(p.s) {
		return int(p.s[p.pos])
	}
	return eof
}

// eof is what peek returns at the end of the template.
const eof = -1

// template parses Template = "/" Segments [ Verb ].
func (p *parser) template() error {
	if p.peek() != '/' {
		return p.errorf(`a template starts with "/"`)
	}
	p.pos++
	if p.s == "/" {
		return nil
	}
	if err := p.segments(false); err != nil {
		return err
	}
	if p.peek() == ':' {
		p.pos++
		verb, err := p.literal("verb")
		if err != nil {
			return err
		}
		p.t.verb = verb
	}
	if p.pos < len(p.s) {
		return p.errorf("unexpected %q", p.s[p.pos])
	}
	return nil
}

// segments parses Segments = Segment { "/" Segment }, at the top level or
// inside a variable.
func (p *parser) segments(inVar bool) error {
	for {
		if err := p.segment(inVar); err != nil {
			return err
		}
		switch c := p.peek(); {
		case c == '/':
			p.pos++
		case c == eof, c == ':' && !inVar, c == '}' && inVar:
			return nil
		default:
			return p.errorf("unexpected %q after a segment", byte(c))
		}
	}
}

// segment parses Segment = "*" | "**" | LITERAL | Variable.
func (p *parser) segment(inVar bool) error {
	if n := len(p.t.segs); n > 0 && p.t.segs[n-1].kind == kindDoubleStar {
		return p.errorf(`"**" must be the last segment`)
	}
	switch p.peek() {
	case eof, '/', '}', ':':
		return p.errorf("missing segment")
	case '*':
		p.pos++
		kind := kindStar
		if p.peek() == '*' {
			p.pos++
			kind = kindDoubleStar
		}
		p.t.segs = append(p.t.segs, segment{kind: kind})
		return nil
	case '{':
		if inVar {
			return p.errorf("a variable inside a variable")
		}
		return p.variable()
	}
	lit, err := p.literal("segment")
	if err != nil {
		return err
	}
	p.t.segs = append(p.t.segs, segment{kind: kindLiteral, lit: lit})
	return nil
}

// variable parses Variable = "{" FieldPath [ "=" Segments ] "}".
func (p *parser) variable() error {
	open := p.pos
	p.pos++ // "{"
	field, err := p.fieldPath()
	if err != nil {
		return err
	}
	start := len(p.t.segs)
	switch p.peek() {
	case '=':
		p.pos++
		if err := p.segments(true); err != nil {
			return err
		}
	case '}':
		p.t.segs = append(p.t.segs, segment{kind: kindStar})
	}
	if p.peek() != '}' {
		if p.pos == len(p.s) {
			p.pos = open
			return p.errorf(`variable without its "}"`)
		}
		return p.errorf("unexpected %q in a variable", p.s[p.pos])
	}
	p.pos++
	if err := p.bind(field, open); err != nil {
		return err
	}
	p.t.vars = append(p.t.vars, variable{field: field, start: start, end: len(p.t.segs)})
	return nil
}

// fieldPath parses FieldPath = IDENT { "." IDENT }.
func (p *parser) fieldPath() (string, error) {
	start := p.pos
	for {
		if p.pos == len(p.s) || !isIdentStart(p.s[p.pos]) {
			return "", p.errorf("expected a field name, found %s", p.describeNext())
		}
		for p.pos++; p.pos < len(p.s) && isIdentPart(p.s[p.pos]); p.pos++ {
		}
		if p.peek() != '.' {
			return p.s[start:p.pos], nil
		}
		p.pos++
	}
}

// bind records that the variable at offset open binds field, refusing a field
// path bound before, or inside or around one bound before.
func (p *parser) bind(field string, open int) error {
	if p.bound == nil {
		p.bound, p.prefixes = map[string]bool{}, map[string]bool{}
	}
	fail := func(format string, args ...any) error {
		p.pos = open
		return p.errorf(format, args...)
	}
	if p.bound[field] {
		return fail("field %q is bound twice", field)
	}
	if p.prefixes[field] {
		return fail("field %q is bound, and a field inside it too", field)
	}
	for i := range len(field) {
		if field[i] == '.' && p.bound[field[:i]] {
			return fail("field %q is inside %q, which is bound too", field, field[:i])
		}
	}
	p.bound[field] = true
	for i := range len(field) {
		if field[i] == '.' {
			p.prefixes[field[:i]] = true
		}
	}
	return nil
}

// literal parses a LITERAL (of a segment or the verb) and returns it
// percent-decoded.
func (p *parser) literal(what string) (string, error) {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if isUnreserved(c) {
			p.pos++
			continue
		}
		if c != '%' {
			break
		}
		if p.pos+2 >= len(p.s) || !isHex(p.s[p.pos+1]) || !isHex(p.s[p.pos+2]) {
			return "", p.errorf("malformed percent-encoding")
		}
		p.pos += 3
	}
	if p.pos == start {
		return "", p.errorf(`expected a %s (letters, digits, "-._~" and percent-encoded octets), found %s`,
			what, p.describeNext())
	}
	return unescape(p.s[start:p.pos], false), nil
}

// describeNext names the next byte for an error.
func (p *parser) describeNext() string {
	if p.pos == len(p.s) {
		return "the end"
	}
	return fmt.Sprintf("%q", p.s[p.pos])
}

// String returns the template in canonical form: literals and the verb with
// only unreserved characters left unencoded (hex digits in upper case), and
// {var} for {var=*}. ParseTemplate(t.String()) is a template equal to t.
func (t *Template) String() string {
	return t.write(false)
}

// OpenAPIPath returns the template as an OpenAPI path: variables as
// "{field.path}" whatever their pattern, and the rest as in [Template.String]
// (so "/v1/{name=projects/*}:publish" is "/v1/{name}:publish"). "*" and "**"
// outside variables, which OpenAPI cannot express, are written as they are.
func (t *Template) OpenAPIPath() string {
	return t.write(true)
}

func (t *Template) write(openAPI bool) string {
	if len(t.segs) == 0 {
		return "/"
	}
	var b strings.Builder
	vars := t.vars
	for i := 0; i < len(t.segs); {
		b.WriteByte('/')
		if len(vars) == 0 || vars[0].start != i {
			writeSegment(&b, t.segs[i])
			i++
			continue
		}
		v := vars[0]
		vars = vars[1:]
		b.WriteString("{")
		b.WriteString(v.field)
		if !openAPI && (v.end-v.start > 1 || t.segs[v.start].kind != kindStar) {
			b.WriteByte('=')
			for j := v.start; j < v.end; j++ {
				if j > v.start {
					b.WriteByte('/')
				}
				writeSegment(&b, t.segs[j])
			}
		}
		b.WriteString("}")
		i = v.end
	}
	if t.verb != "" {
		b.WriteByte(':')
		writeEscaped(&b, t.verb)
	}
	return b.String()
}

func writeSegment(b *strings.Builder, s segment) {
	switch s.kind {
	case kindStar:
		b.WriteString("*")
	case kindDoubleStar:
		b.WriteString("**")
	default:
		writeEscaped(b, s.lit)
	}
}

// writeEscaped writes s with every byte but the unreserved ones
// percent-encoded.
func writeEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := range len(s) {
		if c := s[i]; isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.Write([]byte{'%', hex[c>>4], hex[c&15]})
		}
	}
}

// Verb returns the verb of the template, percent-decoded, or "" when it has
// none ("publish" for "/v1/{name=topics/*}:publish").
func (t *Template) Verb() string {
	return t.verb
}

// Vars returns the field paths of the template's variables, in order
// (["user_id", "message_id"] for "/v1/users/{user_id}/messages/{message_id}").
func (t *Template) Vars() []string {
	fields := make([]string, len(t.vars))
	for i, v := range t.vars {
		fields[i] = v.field
	}
	return fields
}

// compare orders two templates by precedence: it is negative when t is more
// specific than u, positive when u is, 0 when they have the same kinds of
// segments and both or neither have a verb. See the package documentation.
func (t *Template) compare(u *Template) int {
	for i := 0; ; i++ {
		a, b := t.rank(i), u.rank(i)
		if a != b {
			return a - b
		}
		if a >= rankEnd {
			break
		}
	}
	switch {
	case t.verb != "" && u.verb == "":
		return -1
	case t.verb == "" && u.verb != "":
		return 1
	}
	return 0
}

// Ranks of the segments for compare, most specific first.
const (
	rankLiteral = iota
	rankStar
	rankEnd // no more segments
	rankDoubleStar
)

// rank returns the rank of the i-th segment.
func (t *Template) rank(i int) int {
	if i >= len(t.segs) {
		return rankEnd
	}
	switch t.segs[i].kind {
	case kindStar:
		return rankStar
	case kindDoubleStar:
		return rankDoubleStar
	}
	return rankLiteral
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || '0' <= c && c <= '9'
}

// isUnreserved reports whether c is an unreserved character of RFC 3986.
func isUnreserved(c byte) bool {
	return isIdentPart(c) || c == '-' || c == '.' || c == '~'
}
