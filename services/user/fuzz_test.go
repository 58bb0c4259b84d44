package user

import (
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// FuzzCreateUser feeds arbitrary names and emails to CreateUser on a SQLite
// store: it must answer OK, InvalidArgument (naming only name and email) or
// AlreadyExists, and a created user must read back as given.
func FuzzCreateUser(f *testing.F) { fuzzCreateUser(f, sqliteBackend) }

// FuzzCreateUserPostgres is [FuzzCreateUser] on PostgreSQL, whose text
// holds less than SQLite's: whatever the server accepts must be stored.
func FuzzCreateUserPostgres(f *testing.F) { fuzzCreateUser(f, postgresBackend) }

func fuzzCreateUser(f *testing.F, b backend) {
	seeds := []struct{ name, email string }{
		{"Alice", "alice@example.com"},
		{"", ""},
		{"Bob", " bob@example.com "},
		{"Bob <b>", "Bob <bob@example.com>"},
		{"\xff", "a@b"},
		{strings.Repeat("n", 201), emailOfLen(255)},
		{"nul\x00name", "nul@example.com"},
		{"Zoë", `"quoted local"@example.com`},
		{"x", "a@[127.0.0.1]"},
		{"y", "üser@exämple.com"},
	}
	for _, s := range seeds {
		f.Add(s.name, s.email)
	}
	srv := NewServer(b.newStore(f))

	f.Fuzz(func(t *testing.T, name, email string) {
		ctx := t.Context()
		resp, err := srv.CreateUser(ctx, &userv1.CreateUserRequest{Name: name, Email: email})
		switch code := status.Code(err); code {
		case codes.OK:
			u := resp.GetUser()
			want := &userv1.User{Name: name, Email: strings.TrimSpace(email)}
			if diff := cmp.Diff(want, u, protocmp.Transform(), ignoreAssigned); diff != "" {
				t.Fatalf("CreateUser(%q, %q) (-want +got):\n%s", name, email, diff)
			}
			if len(name) > maxNameBytes || !utf8.ValidString(name) {
				t.Errorf("CreateUser accepted name %q", name)
			}
			if addr, err := mail.ParseAddress(u.GetEmail()); err != nil || len(u.GetEmail()) > maxEmailBytes || addr.Address != u.GetEmail() {
				t.Errorf("CreateUser accepted email %q (%v)", email, err)
			}
			got, err := srv.GetUser(ctx, &userv1.GetUserRequest{Id: u.GetId()})
			if err != nil {
				t.Fatalf("GetUser(%q): %v", u.GetId(), err)
			}
			if diff := cmp.Diff(u, got.GetUser(), protocmp.Transform()); diff != "" {
				t.Errorf("GetUser after CreateUser(%q, %q) (-want +got):\n%s", name, email, diff)
			}
		case codes.InvalidArgument:
			fields := badRequestFields(err)
			if len(fields) == 0 {
				t.Fatalf("CreateUser(%q, %q): InvalidArgument without field violations: %v", name, email, err)
			}
			for _, f := range fields {
				if f != "name" && f != "email" {
					t.Errorf("CreateUser(%q, %q): violation of unexpected field %q", name, email, f)
				}
			}
		case codes.AlreadyExists:
		default:
			t.Fatalf("CreateUser(%q, %q): code %v (%v), want OK, InvalidArgument or AlreadyExists", name, email, code, err)
		}
	})
}
