package httprule

import "strings"

// A Binding is the value that a path gives to a variable of a template.
type Binding struct {
	Field string // the variable's field path, such as "name" or "sub.subfield"
	Value string // the matched text, percent-decoded as the package documentation says
}

// Match matches an escaped request path (r.URL.EscapedPath()) against the
// template and returns the values of its variables, in the order of
// [Template.Vars] (nil for a template without variables). It reports false
// when the path does not match, and for a path with a malformed
// percent-encoding. The package documentation gives the rules.
func (t *Template) Match(escapedPath string) ([]Binding, bool) {
	p, ok := trimPath(escapedPath)
	if !ok {
		return nil, false
	}
	if t.verb != "" {
		var verb string
		if p, verb, ok = splitVerb(p); !ok || !equalUnescaped(verb, t.verb) {
			return nil, false
		}
	}
	if !t.match(p) {
		return nil, false
	}
	return t.bind(p), true
}

// trimPath checks that an escaped path starts with "/" and that its
// percent-encodings are well formed, and returns it without the "/".
func trimPath(escapedPath string) (string, bool) {
	if escapedPath == "" || escapedPath[0] != '/' || !validEscapes(escapedPath) {
		return "", false
	}
	return escapedPath[1:], true
}

// splitVerb splits a path (without its leading "/") whose last segment ends
// with ":verb" after at least one byte into the path without it and the
// escaped verb; ok is false for a path without a verb.
func splitVerb(p string) (rest, verb string, ok bool) {
	last := p[strings.LastIndexByte(p, '/')+1:]
	i := strings.LastIndexByte(last, ':')
	if i <= 0 || i == len(last)-1 {
		return "", "", false
	}
	return p[:len(p)-len(last)+i], last[i+1:], true
}

// cut returns the first segment of a path and what follows its "/"; last
// reports that there is no "/" and thus no segment after seg.
func cut(p string) (seg, rest string, last bool) {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:], false
	}
	return p, "", true
}

// match reports whether the segments of p, a path without its leading "/"
// and its verb, match the template's. p == "" has no segment.
func (t *Template) match(p string) bool {
	rest, done := p, p == ""
	for _, s := range t.segs {
		if s.kind == kindDoubleStar {
			return true
		}
		if done {
			return false
		}
		var seg string
		seg, rest, done = cut(rest)
		switch s.kind {
		case kindLiteral:
			if !equalUnescaped(seg, s.lit) {
				return false
			}
		case kindStar:
			if seg == "" {
				return false
			}
		}
	}
	return done
}

// bind returns the bindings of the template's variables for p, which
// matches it.
func (t *Template) bind(p string) []Binding {
	if len(t.vars) == 0 {
		return nil
	}
	b := make([]Binding, len(t.vars))
	vi := 0
	begin, off := 0, 0 // where the current variable and segment start in p
	rest := p
	for i, s := range t.segs {
		v := t.vars[vi]
		if v.start == i {
			begin = min(off, len(p))
		}
		end := len(p) // "**" takes the rest
		if s.kind != kindDoubleStar {
			var seg string
			seg, rest, _ = cut(rest)
			end = off + len(seg)
			off = end + 1
		}
		if v.end == i+1 {
			b[vi] = Binding{Field: v.field, Value: unescape(p[begin:end], v.multi(t.segs))}
			if vi++; vi == len(t.vars) {
				break
			}
		}
	}
	return b
}

// validEscapes reports whether every "%" of s starts a percent-encoded octet.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; {
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		j := strings.IndexByte(s[i+3:], '%')
		if j < 0 {
			break
		}
		i += 3 + j
	}
	return true
}

// unescape percent-decodes s, whose escapes are valid, except that with
// keepSlash "%2F" and "%2f" are written "%2F".
func unescape(s string, keepSlash bool) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
			if c == '/' && keepSlash {
				b.WriteString("%2F")
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// appendUnescaped appends s, whose escapes are valid, percent-decoded.
func appendUnescaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		dst = append(dst, c)
	}
	return dst
}

// equalUnescaped reports whether s, whose escapes are valid, is decoded
// once percent-decoded.
func equalUnescaped(s, decoded string) bool {
	j := 0
	for i := 0; i < len(s); i, j = i+1, j+1 {
		c := s[i]
		if c == '%' {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if j == len(decoded) || decoded[j] != c {
			return false
		}
	}
	return j == len(decoded)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
