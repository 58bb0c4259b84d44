package httprule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrConflict is wrapped by the error that [Router.Add] returns for a route
// that would match the same requests as a route added before: the same
// method and an equivalent template (equal once the names of the variables
// are left out, such as "/v1/users/{id}" and "/v1/users/{name}", or
// "/v1/{name=shelves/*}" and "/v1/shelves/{shelf}"). The error is a
// [*ConflictError].
var ErrConflict = errors.New("httprule: conflicting routes")

// A ConflictError is the error of [Router.Add] for a route that conflicts
// with one added before. It wraps [ErrConflict].
type ConflictError struct {
	Method        string
	Template      *Template // of the route refused
	Existing      *Template // of the route added before
	ExistingValue any       // the value of the route added before
}

// Error names both routes.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("httprule: conflicting routes: %s %s matches the same requests as %s %s, added before",
		e.Method, e.Template, e.Method, e.Existing)
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error {
	return ErrConflict
}

// A Router maps HTTP methods and paths to values of type T (handlers, or
// descriptions of the gRPC methods to call).
//
// A Router is built by one goroutine with [NewRouter] and [Router.Add] and
// then not changed: to change the routes, build a new Router and swap it in
// (an atomic.Pointer). Once the last Add has returned, [Router.Lookup] and
// [Router.Len] may be called from any number of goroutines.
type Router[T any] struct {
	root node[T]
	n    int
}

// node is a node of the router's tree of template segments. The path from
// the root to a node is a sequence of segments (literals, "*" and "**"),
// the same for every route it holds.
type node[T any] struct {
	literals   map[string]*node[T] // by decoded literal
	star       *node[T]
	doubleStar *node[T] // a leaf: "**" is the last segment
	routes     []route[T]
}

// route is a route of a router, held by the node of its template's segments.
type route[T any] struct {
	method string
	tmpl   *Template
	value  T
}

// NewRouter returns an empty router.
func NewRouter[T any]() *Router[T] {
	return &Router[T]{}
}

// Add adds the route of method and t, with value v. method is an HTTP method
// (GET, POST, PUT, PATCH, DELETE or a custom one, an RFC 9110 token), taken
// as it is: the caller decides what "*" or HEAD mean. Add returns an error
// wrapping [ErrConflict] for a route that matches the same requests as one
// added before.
func (r *Router[T]) Add(method string, t *Template, v T) error {
	if !isToken(method) {
		return fmt.Errorf("httprule: method %q is not an HTTP method token", method)
	}
	if t == nil {
		return errors.New("httprule: nil template")
	}
	n := &r.root
	for _, s := range t.segs {
		n = n.child(s)
	}
	for _, rt := range n.routes {
		if rt.method == method && rt.tmpl.verb == t.verb {
			return &ConflictError{Method: method, Template: t, Existing: rt.tmpl, ExistingValue: rt.value}
		}
	}
	n.routes = append(n.routes, route[T]{method: method, tmpl: t, value: v})
	r.n++
	return nil
}

// child returns the child of n for s, adding it if there is none.
func (n *node[T]) child(s segment) *node[T] {
	next := &n.star
	switch s.kind {
	case kindDoubleStar:
		next = &n.doubleStar
	case kindLiteral:
		if n.literals == nil {
			n.literals = map[string]*node[T]{}
		}
		c := n.literals[s.lit]
		if c == nil {
			c = &node[T]{}
			n.literals[s.lit] = c
		}
		return c
	}
	if *next == nil {
		*next = &node[T]{}
	}
	return *next
}

// Len returns the number of routes.
func (r *Router[T]) Len() int {
	return r.n
}

// Lookup finds the route for a request's method and escaped path
// (r.URL.EscapedPath()). When a route of method has a template that matches
// the path, ok is true, and v and b are the route's value and the bindings
// of its template's variables; when several do, the most specific template
// wins (see the package documentation). Otherwise allowed lists, sorted and
// without duplicates, the methods of the routes whose templates match the
// path (for a 405 and its Allow header), and is empty when there is none
// (a 404); a path with a malformed percent-encoding matches nothing.
//
// Lookup allocates only the bindings of the route found (and their values
// that needed decoding), the allowed list, and a buffer for a literal
// segment longer than 128 bytes once decoded. Its work is bounded by the
// size of the routes' templates and of the path, whatever they are: a walk
// visits a node of the router's tree at most once, and a lookup walks the
// tree at most four times (with and without the path's verb, to find the
// route and then the allowed methods).
func (r *Router[T]) Lookup(method, escapedPath string) (v T, b []Binding, allowed []string, ok bool) {
	p, ok := trimPath(escapedPath)
	if !ok {
		return v, nil, nil, false
	}
	plain := search[T]{method: method}
	plain.walk(&r.root, p, p == "")
	found, matched := plain.found, p

	vp, verb, hasVerb := splitVerb(p)
	if hasVerb {
		s := search[T]{method: method, verb: verb, hasVerb: true}
		s.walk(&r.root, vp, false)
		if s.found != nil && (found == nil || s.found.tmpl.compare(found.tmpl) < 0) {
			found, matched = s.found, vp
		}
	}
	if found != nil {
		return found.value, found.tmpl.bind(matched), nil, true
	}

	c := search[T]{collect: true}
	c.walk(&r.root, p, p == "")
	if hasVerb {
		c.verb, c.hasVerb = verb, true
		c.walk(&r.root, vp, false)
	}
	slices.Sort(c.allowed)
	return v, nil, slices.Compact(c.allowed), false
}

// search is one walk of a router's tree for a path, reading its last
// segment's ":verb" as a verb or not.
type search[T any] struct {
	method  string
	verb    string // escaped; with hasVerb, the path's verb
	hasVerb bool

	found *route[T] // the first route of method found

	collect bool     // instead of finding a route of method, collect the methods of all
	allowed []string // with collect
}

// walk visits the nodes of the tree under n that match a path, the
// segments rest (none when done), in the order of precedence, and reports
// whether it found the route it searches.
func (s *search[T]) walk(n *node[T], rest string, done bool) bool {
	if done {
		return s.visit(n) || n.doubleStar != nil && s.visit(n.doubleStar)
	}
	seg, rest, last := cut(rest)
	if c := n.literal(seg); c != nil && s.walk(c, rest, last) {
		return true
	}
	if n.star != nil && seg != "" && s.walk(n.star, rest, last) {
		return true
	}
	return n.doubleStar != nil && s.visit(n.doubleStar)
}

// visit looks at the routes of n, whose segments match the path.
func (s *search[T]) visit(n *node[T]) bool {
	for i := range n.routes {
		rt := &n.routes[i]
		if s.hasVerb != (rt.tmpl.verb != "") || s.hasVerb && !equalUnescaped(s.verb, rt.tmpl.verb) {
			continue
		}
		if s.collect {
			s.allowed = append(s.allowed, rt.method)
		} else if rt.method == s.method {
			s.found = rt
			return true
		}
	}
	return false
}

// literal returns the child of n for the escaped path segment seg, or nil.
func (n *node[T]) literal(seg string) *node[T] {
	if len(n.literals) == 0 {
		return nil
	}
	if strings.IndexByte(seg, '%') < 0 {
		return n.literals[seg]
	}
	var buf [128]byte
	return n.literals[string(appendUnescaped(buf[:0], seg))]
}

// isToken reports whether s is a token of RFC 9110, as HTTP methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isIdentPart(c) && !strings.ContainsRune("!#$%&'*+-.^`|~", rune(c)) {
			return false
		}
	}
	return true
}
