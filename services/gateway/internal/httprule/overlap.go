package httprule

import "strings"

// Overlaps reports whether some request path matches both t and u: two
// routes of one HTTP method that overlap would each take some requests of
// the other, the more specific one winning (see the package
// documentation). A template with a verb and one without overlap when the
// latter's last segment can end with ":verb" (a "*" or "**" takes it, as
// Match does for a template without a verb).
func (t *Template) Overlaps(u *Template) bool {
	switch {
	case t.verb == u.verb:
		return segsOverlap(t.segs, u.segs)
	case t.verb != "" && u.verb != "":
		return false
	case t.verb == "":
		t, u = u, t // t has the verb, u none
	}
	// u's last segment must hold "<t's last segment>:<verb>".
	if len(u.segs) == 0 || len(t.segs) == 0 {
		return false
	}
	last := u.segs[len(u.segs)-1]
	if last.kind != kindLiteral {
		return segsOverlap(t.segs, u.segs)
	}
	prefix, ok := strings.CutSuffix(last.lit, ":"+t.verb)
	if !ok {
		return false
	}
	segs := append(append([]segment(nil), u.segs[:len(u.segs)-1]...), segment{kind: kindLiteral, lit: prefix})
	return segsOverlap(t.segs, segs)
}

// segsOverlap reports whether some sequence of path segments matches both
// a and b: literals equal, "*" any one non-empty segment, "**" (always
// last) any rest.
func segsOverlap(a, b []segment) bool {
	for i := 0; ; i++ {
		switch {
		case i < len(a) && a[i].kind == kindDoubleStar, i < len(b) && b[i].kind == kindDoubleStar:
			return true
		case i == len(a) || i == len(b):
			return len(a) == len(b)
		}
		x, y := a[i], b[i]
		switch {
		case x.kind == kindLiteral && y.kind == kindLiteral:
			if x.lit != y.lit {
				return false
			}
		case x.kind == kindLiteral:
			if x.lit == "" {
				return false // "*" takes no empty segment
			}
		case y.kind == kindLiteral:
			if y.lit == "" {
				return false
			}
		}
	}
}
