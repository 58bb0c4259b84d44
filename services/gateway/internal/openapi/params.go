package openapi

import (
	"slices"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// parameter is an OpenAPI Parameter Object.
type parameter struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Style       string  `json:"style,omitempty"`
	Explode     bool    `json:"explode,omitempty"`
	Schema      *schema `json:"schema"`
}

// pathParameters returns the path parameters of op, in the path's order.
// checkOperation made sure that each names a singular leaf field.
func pathParameters(s *schemas, op *Operation) []parameter {
	var params []parameter
	for _, name := range op.PathParams {
		fd, _ := lookupField(op.Input, name)
		params = append(params, parameter{
			Name:        name,
			In:          "path",
			Description: comment(fd),
			Required:    true,
			Schema:      s.value(fd),
		})
	}
	return params
}

// queryParameters returns the query parameters of op: the leaf fields of
// its input outside the path and the body, none when the body is "*".
func queryParameters(s *schemas, op *Operation) []parameter {
	if op.Body == "*" {
		return nil
	}
	bound := map[string]bool{}
	for _, p := range op.PathParams {
		bound[p] = true
	}
	if op.Body != "" {
		bound[op.Body] = true
	}
	q := query{bound: bound, budget: maxQueryFields}
	s.addQuery(&q, op.Input, "", []protoreflect.FullName{op.Input.FullName()})
	return q.params
}

// query is the state of one operation's walk for its query parameters.
type query struct {
	params []parameter
	bound  map[string]bool // field paths of the path and the body
	budget int             // fields the walk may still look at
}

// maxQueryFields bounds the fields that the walk for one operation's query
// parameters looks at: messages that nest other wide messages (a DAG, not a
// recursion) would otherwise give width^MaxQueryDepth parameters.
const maxQueryFields = 1000

// addQuery appends to q.params the query parameters of the fields of md,
// leaving out those of q.bound. The field paths of md start with prefix;
// outer are the messages from the input to md, which the fields of md do
// not enter again (a recursive message would never end). Fields nested
// deeper than [MaxQueryDepth] are left out too, and so are those beyond
// the first maxQueryFields fields looked at.
func (s *schemas) addQuery(q *query, md protoreflect.MessageDescriptor, prefix string, outer []protoreflect.FullName) {
	fields := md.Fields()
	for i := range fields.Len() {
		if q.budget--; q.budget < 0 {
			return
		}
		fd := fields.Get(i)
		name := prefix + string(fd.Name())
		switch {
		case q.bound[name] || fd.IsMap():
		case isLeaf(fd) && fd.IsList():
			q.params = append(q.params, parameter{
				Name:        name,
				In:          "query",
				Description: comment(fd),
				Style:       "form",
				Explode:     true,
				Schema:      &schema{Type: "array", Items: s.value(fd)},
			})
		case isLeaf(fd):
			q.params = append(q.params, parameter{Name: name, In: "query", Description: comment(fd), Schema: s.value(fd)})
		case fd.Message() != nil && !fd.IsList() && !isWellKnown(fd.Message()) &&
			len(outer) < MaxQueryDepth && !slices.Contains(outer, fd.Message().FullName()):
			s.addQuery(q, fd.Message(), name+".", append(slices.Clip(outer), fd.Message().FullName()))
		}
	}
}
