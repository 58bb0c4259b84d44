package user

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	maxNameBytes  = 200
	maxEmailBytes = 254
)

// violations collects the field violations of one request.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, desc string) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: desc})
}

// err returns nil when there are no violations, else InvalidArgument with a
// google.rpc.BadRequest detail listing them.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	parts := make([]string, len(v))
	for i, fv := range v {
		parts[i] = fv.GetField() + ": " + fv.GetDescription()
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: v}); err == nil {
		st = d
	}
	return st.Err()
}

// checkName adds a violation of field when name is not 1 to maxNameBytes
// bytes of valid UTF-8 without NUL characters (which PostgreSQL text cannot
// hold).
func (v *violations) checkName(field, name string) {
	switch {
	case name == "":
		v.add(field, "is required")
	case len(name) > maxNameBytes:
		v.add(field, fmt.Sprintf("must be at most %d bytes", maxNameBytes))
	case !utf8.ValidString(name):
		v.add(field, "must be valid UTF-8")
	case strings.ContainsRune(name, 0):
		v.add(field, "must not contain NUL characters")
	}
}

// checkEmail returns email without surrounding white space, adding a
// violation of field unless that is a single bare address (as
// net/mail.ParseAddress reads it, with no display name, angle brackets or
// comments) of at most maxEmailBytes bytes.
func (v *violations) checkEmail(field, email string) string {
	email = strings.TrimSpace(email)
	switch {
	case email == "":
		v.add(field, "is required")
	case len(email) > maxEmailBytes:
		v.add(field, fmt.Sprintf("must be at most %d bytes", maxEmailBytes))
	default:
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Name != "" || addr.Address != email {
			v.add(field, "must be a single address such as name@example.com")
		}
	}
	return email
}
