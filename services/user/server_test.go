package user

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// ignoreAssigned ignores the fields the store assigns.
var ignoreAssigned = protocmp.IgnoreFields(&userv1.User{}, "id", "create_time", "update_time")

func TestServerLifecycle(t *testing.T) { forEachBackend(t, testServerLifecycle) }

func testServerLifecycle(t *testing.T, b backend) {
	ctx := t.Context()
	c := startServer(t, b.newStore(t))

	created, err := c.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Alice", Email: "  alice@example.com\t"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	alice := created.GetUser()
	want := &userv1.User{Name: "Alice", Email: "alice@example.com"}
	if diff := cmp.Diff(want, alice, protocmp.Transform(), ignoreAssigned); diff != "" {
		t.Errorf("CreateUser user (-want +got):\n%s", diff)
	}
	if id, err := uuid.Parse(alice.GetId()); err != nil || id.Version() != 7 {
		t.Errorf("CreateUser id = %q: want a UUIDv7 (err %v)", alice.GetId(), err)
	}
	if !alice.GetCreateTime().IsValid() || !proto.Equal(alice.GetCreateTime(), alice.GetUpdateTime()) {
		t.Errorf("CreateUser times = %v, %v: want equal valid times", alice.GetCreateTime(), alice.GetUpdateTime())
	}
	if d := time.Since(alice.GetCreateTime().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("CreateUser create_time is %v ago, want about now", d)
	}

	got, err := c.GetUser(ctx, &userv1.GetUserRequest{Id: alice.GetId()})
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(alice, got.GetUser(), protocmp.Transform()); diff != "" {
		t.Errorf("GetUser (-want +got):\n%s", diff)
	}

	list, err := c.ListUsers(ctx, &userv1.ListUsersRequest{})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if diff := cmp.Diff(&userv1.ListUsersResponse{Users: []*userv1.User{alice}}, list, protocmp.Transform()); diff != "" {
		t.Errorf("ListUsers (-want +got):\n%s", diff)
	}

	updates := []struct {
		name string
		req  *userv1.UpdateUserRequest
		want *userv1.User
	}{
		{
			name: "name",
			req:  &userv1.UpdateUserRequest{Name: proto.String("Alice A.")},
			want: &userv1.User{Name: "Alice A.", Email: "alice@example.com"},
		},
		{
			name: "email",
			req:  &userv1.UpdateUserRequest{Email: proto.String(" alice@example.org ")},
			want: &userv1.User{Name: "Alice A.", Email: "alice@example.org"},
		},
		{
			name: "both",
			req:  &userv1.UpdateUserRequest{Name: proto.String("Al"), Email: proto.String("al@example.org")},
			want: &userv1.User{Name: "Al", Email: "al@example.org"},
		},
		{
			name: "same email",
			req:  &userv1.UpdateUserRequest{Email: proto.String("al@example.org")},
			want: &userv1.User{Name: "Al", Email: "al@example.org"},
		},
	}
	for _, tt := range updates {
		t.Run("UpdateUser/"+tt.name, func(t *testing.T) {
			tt.req.Id = alice.GetId()
			resp, err := c.UpdateUser(ctx, tt.req)
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			u := resp.GetUser()
			if diff := cmp.Diff(tt.want, u, protocmp.Transform(), ignoreAssigned); diff != "" {
				t.Errorf("UpdateUser (-want +got):\n%s", diff)
			}
			if u.GetId() != alice.GetId() || !proto.Equal(u.GetCreateTime(), alice.GetCreateTime()) {
				t.Errorf("UpdateUser changed id or create_time: got %v, was %v", u, alice)
			}
			if u.GetUpdateTime().AsTime().Before(u.GetCreateTime().AsTime()) {
				t.Errorf("UpdateUser update_time %v before create_time %v", u.GetUpdateTime(), u.GetCreateTime())
			}
			got, err := c.GetUser(ctx, &userv1.GetUserRequest{Id: alice.GetId()})
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if diff := cmp.Diff(u, got.GetUser(), protocmp.Transform()); diff != "" {
				t.Errorf("GetUser after UpdateUser (-want +got):\n%s", diff)
			}
		})
	}

	if _, err := c.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: alice.GetId()}); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := c.GetUser(ctx, &userv1.GetUserRequest{Id: alice.GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("GetUser after DeleteUser: %v, want NotFound", err)
	}
	// The old email is free again.
	if _, err := c.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Alice", Email: "al@example.org"}); err != nil {
		t.Errorf("CreateUser with a deleted user's email: %v", err)
	}
}

// emailOfLen returns a valid address of n bytes (n >= 10).
func emailOfLen(n int) string {
	const local, tld = "user@", ".com"
	return local + strings.Repeat("b", n-len(local)-len(tld)) + tld
}

func TestServerErrors(t *testing.T) { forEachBackend(t, testServerErrors) }

func testServerErrors(t *testing.T, b backend) {
	ctx := t.Context()
	c := startServer(t, b.newStore(t))
	mustCreate := func(name, email string) *userv1.User {
		t.Helper()
		resp, err := c.CreateUser(ctx, &userv1.CreateUserRequest{Name: name, Email: email})
		if err != nil {
			t.Fatalf("CreateUser(%q, %q): %v", name, email, err)
		}
		return resp.GetUser()
	}
	alice := mustCreate("Alice", "alice@example.com")
	mustCreate("Bob", "bob@example.com")
	missing := uuid.Must(uuid.NewV7()).String()
	garbageToken := "bm90LWEtdG9rZW4" // base64url of "not-a-token"
	wrongVersion := pageTokenEncoding.EncodeToString([]byte("u0:" + missing))

	type call func(context.Context) error
	create := func(name, email string) call {
		return func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &userv1.CreateUserRequest{Name: name, Email: email})
			return err
		}
	}
	get := func(id string) call {
		return func(ctx context.Context) error {
			_, err := c.GetUser(ctx, &userv1.GetUserRequest{Id: id})
			return err
		}
	}
	list := func(size int32, token string) call {
		return func(ctx context.Context) error {
			_, err := c.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: size, PageToken: token})
			return err
		}
	}
	update := func(id string, name, email *string) call {
		return func(ctx context.Context) error {
			_, err := c.UpdateUser(ctx, &userv1.UpdateUserRequest{Id: id, Name: name, Email: email})
			return err
		}
	}
	del := func(id string) call {
		return func(ctx context.Context) error {
			_, err := c.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: id})
			return err
		}
	}
	s := proto.String

	tests := []struct {
		name       string
		call       call
		wantCode   codes.Code
		wantFields []string // BadRequest field names, for InvalidArgument
		wantMsg    string   // a substring of the message, if set
	}{
		{name: "create/name 200 bytes", call: create(strings.Repeat("n", 200), "n200@example.com"), wantCode: codes.OK},
		{name: "create/email 254 bytes", call: create("Long", emailOfLen(254)), wantCode: codes.OK},
		{name: "create/utf-8 name", call: create("Zoë 🙂", "zoe@example.com"), wantCode: codes.OK},
		{name: "create/empty name", call: create("", "x1@example.com"), wantCode: codes.InvalidArgument, wantFields: []string{"name"}},
		{name: "create/name 201 bytes", call: create(strings.Repeat("n", 201), "x2@example.com"), wantCode: codes.InvalidArgument, wantFields: []string{"name"}},
		{name: "create/name with NUL", call: create("nul\x00name", "x3@example.com"), wantCode: codes.InvalidArgument, wantFields: []string{"name"}},
		{name: "create/empty email", call: create("X", ""), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/blank email", call: create("X", "   "), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/email 255 bytes", call: create("X", emailOfLen(255)), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/email no at", call: create("X", "not-an-email"), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/email display name", call: create("X", "Bob <bob2@example.com>"), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/email angle brackets", call: create("X", "<bob3@example.com>"), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/email list", call: create("X", "a@example.com, b@example.com"), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/email comment", call: create("X", "c@example.com (work)"), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "create/both bad", call: create("", "nope"), wantCode: codes.InvalidArgument, wantFields: []string{"name", "email"}},
		{name: "create/email taken", call: create("Alice 2", "alice@example.com"), wantCode: codes.AlreadyExists},
		{name: "create/email taken after trim", call: create("Alice 3", " alice@example.com "), wantCode: codes.AlreadyExists},

		{name: "get/empty id", call: get(""), wantCode: codes.InvalidArgument, wantFields: []string{"id"}},
		{name: "get/missing", call: get(missing), wantCode: codes.NotFound, wantMsg: `user "` + missing + `" not found`},
		{name: "get/not a uuid", call: get("nope"), wantCode: codes.NotFound},
		{name: "get/id with NUL", call: get("a\x00b"), wantCode: codes.NotFound},

		{name: "list/negative page_size", call: list(-1, ""), wantCode: codes.InvalidArgument, wantFields: []string{"page_size"}},
		{name: "list/garbage token", call: list(0, garbageToken), wantCode: codes.InvalidArgument, wantFields: []string{"page_token"}},
		{name: "list/not base64", call: list(0, "!!!"), wantCode: codes.InvalidArgument, wantFields: []string{"page_token"}},
		{name: "list/wrong token version", call: list(0, wrongVersion), wantCode: codes.InvalidArgument, wantFields: []string{"page_token"}},
		{name: "list/both bad", call: list(-5, "x"), wantCode: codes.InvalidArgument, wantFields: []string{"page_size", "page_token"}},
		{name: "list/valid token of a missing user", call: list(1, encodePageToken(missing)), wantCode: codes.OK},

		{name: "update/empty id", call: update("", s("N"), nil), wantCode: codes.InvalidArgument, wantFields: []string{"id"}},
		{name: "update/nothing set", call: update(alice.GetId(), nil, nil), wantCode: codes.InvalidArgument, wantFields: []string{"name", "email"}},
		{name: "update/empty id and nothing set", call: update("", nil, nil), wantCode: codes.InvalidArgument, wantFields: []string{"id", "name", "email"}},
		{name: "update/empty name", call: update(alice.GetId(), s(""), nil), wantCode: codes.InvalidArgument, wantFields: []string{"name"}},
		{name: "update/name 201 bytes", call: update(alice.GetId(), s(strings.Repeat("n", 201)), nil), wantCode: codes.InvalidArgument, wantFields: []string{"name"}},
		{name: "update/name with NUL", call: update(alice.GetId(), s("\x00"), nil), wantCode: codes.InvalidArgument, wantFields: []string{"name"}},
		{name: "update/bad email", call: update(alice.GetId(), nil, s("alice")), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "update/empty email", call: update(alice.GetId(), nil, s("")), wantCode: codes.InvalidArgument, wantFields: []string{"email"}},
		{name: "update/bad name and email", call: update(alice.GetId(), s(""), s("x")), wantCode: codes.InvalidArgument, wantFields: []string{"name", "email"}},
		{name: "update/missing", call: update(missing, s("N"), nil), wantCode: codes.NotFound, wantMsg: missing},
		{name: "update/id with NUL", call: update("a\x00b", s("N"), nil), wantCode: codes.NotFound},
		{name: "update/email taken", call: update(alice.GetId(), nil, s("bob@example.com")), wantCode: codes.AlreadyExists},

		{name: "delete/empty id", call: del(""), wantCode: codes.InvalidArgument, wantFields: []string{"id"}},
		{name: "delete/missing", call: del(missing), wantCode: codes.NotFound, wantMsg: missing},
		{name: "delete/id with NUL", call: del("a\x00b"), wantCode: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantFields, badRequestFields(err)); diff != "" {
				t.Errorf("BadRequest fields (-want +got):\n%s", diff)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.wantMsg)
			}
		})
	}

	// Failed calls changed nothing.
	got, err := c.GetUser(ctx, &userv1.GetUserRequest{Id: alice.GetId()})
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(alice, got.GetUser(), protocmp.Transform()); diff != "" {
		t.Errorf("alice after failed calls (-want +got):\n%s", diff)
	}
}

// TestServerNonUTF8 calls the handlers directly: grpc-go neither sends nor
// accepts proto3 strings that are not UTF-8, but other clients may send them.
func TestServerNonUTF8(t *testing.T) { forEachBackend(t, testServerNonUTF8) }

func testServerNonUTF8(t *testing.T, b backend) {
	ctx := t.Context()
	srv := NewServer(b.newStore(t))
	created, err := srv.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	tests := []struct {
		name       string
		call       func() error
		wantFields []string
	}{
		{
			name: "create name",
			call: func() error {
				_, err := srv.CreateUser(ctx, &userv1.CreateUserRequest{Name: "bad\xff", Email: "x@example.com"})
				return err
			},
			wantFields: []string{"name"},
		},
		{
			name: "create email",
			call: func() error {
				_, err := srv.CreateUser(ctx, &userv1.CreateUserRequest{Name: "X", Email: "b\xffd@example.com"})
				return err
			},
			wantFields: []string{"email"},
		},
		{
			name: "update name",
			call: func() error {
				_, err := srv.UpdateUser(ctx, &userv1.UpdateUserRequest{Id: created.GetUser().GetId(), Name: proto.String("\xc3")})
				return err
			},
			wantFields: []string{"name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v (%v), want InvalidArgument", status.Code(err), err)
			}
			if diff := cmp.Diff(tt.wantFields, badRequestFields(err)); diff != "" {
				t.Errorf("BadRequest fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerPaging(t *testing.T) { forEachBackend(t, testServerPaging) }

func testServerPaging(t *testing.T, b backend) {
	ctx := t.Context()
	c := startServer(t, b.newStore(t))
	var want []string
	for i := range 25 {
		resp, err := c.CreateUser(ctx, &userv1.CreateUserRequest{Name: "U", Email: uuid.NewString() + "@example.com"})
		if err != nil {
			t.Fatalf("CreateUser %d: %v", i, err)
		}
		want = append(want, resp.GetUser().GetId())
	}

	var (
		got   []string
		sizes []int
		token string
	)
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("more than 10 pages; tokens do not advance")
		}
		resp, err := c.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatalf("ListUsers page %d: %v", page, err)
		}
		sizes = append(sizes, len(resp.GetUsers()))
		for _, u := range resp.GetUsers() {
			got = append(got, u.GetId())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids over all pages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{7, 7, 7, 4}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}

	// page_size 0 means 50: everything on one page.
	resp, err := c.ListUsers(ctx, &userv1.ListUsersRequest{})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(resp.GetUsers()) != 25 || resp.GetNextPageToken() != "" {
		t.Errorf("ListUsers{} = %d users, token %q; want 25 and no token", len(resp.GetUsers()), resp.GetNextPageToken())
	}

	// A token stays valid when its user is deleted.
	first, err := c.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: 5})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if _, err := c.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: want[4]}); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	next, err := c.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: 5, PageToken: first.GetNextPageToken()})
	if err != nil {
		t.Fatalf("ListUsers after deleting the token's user: %v", err)
	}
	var nextIDs []string
	for _, u := range next.GetUsers() {
		nextIDs = append(nextIDs, u.GetId())
	}
	if diff := cmp.Diff(want[5:10], nextIDs); diff != "" {
		t.Errorf("page after a deleted user (-want +got):\n%s", diff)
	}

	_, err = c.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: 7, PageToken: "garbage"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("ListUsers with a garbage token: %v, want InvalidArgument", err)
	}
}

func TestServerPageSize(t *testing.T) {
	users := make([]User, 1001)
	for i := range users {
		users[i] = User{ID: uuid.Must(uuid.NewV7()).String()}
	}
	tests := []struct {
		pageSize  int32
		wantAsked int // page size + 1, passed to Store.List
		wantUsers int
	}{
		{pageSize: 0, wantAsked: 51, wantUsers: 50},
		{pageSize: 1, wantAsked: 2, wantUsers: 1},
		{pageSize: 1000, wantAsked: 1001, wantUsers: 1000},
		{pageSize: 1001, wantAsked: 1001, wantUsers: 1000},
		{pageSize: 1<<31 - 1, wantAsked: 1001, wantUsers: 1000},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			fake := &fakeStore{users: users, lists: make(chan listCall, 1)}
			resp, err := NewServer(fake).ListUsers(t.Context(), &userv1.ListUsersRequest{PageSize: tt.pageSize})
			if err != nil {
				t.Fatalf("ListUsers(%d): %v", tt.pageSize, err)
			}
			if diff := cmp.Diff(listCall{pageSize: tt.wantAsked}, <-fake.lists, cmp.AllowUnexported(listCall{})); diff != "" {
				t.Errorf("Store.List call (-want +got):\n%s", diff)
			}
			if got := len(resp.GetUsers()); got != tt.wantUsers {
				t.Errorf("ListUsers(%d) returned %d users, want %d", tt.pageSize, got, tt.wantUsers)
			}
			if want := encodePageToken(users[tt.wantUsers-1].ID); resp.GetNextPageToken() != want {
				t.Errorf("next_page_token = %q, want %q", resp.GetNextPageToken(), want)
			}
		})
	}
}

func TestServerStoreErrors(t *testing.T) {
	records := make(chan slog.Record, 10)
	c := startServer(t, &fakeStore{err: errBoom}, WithLogger(slog.New(recordHandler{records})))
	ctx := t.Context()
	id := uuid.NewString()
	calls := map[string]func() error{
		"CreateUser": func() error {
			_, err := c.CreateUser(ctx, &userv1.CreateUserRequest{Name: "N", Email: "n@example.com"})
			return err
		},
		"GetUser": func() error {
			_, err := c.GetUser(ctx, &userv1.GetUserRequest{Id: id})
			return err
		},
		"ListUsers": func() error {
			_, err := c.ListUsers(ctx, &userv1.ListUsersRequest{})
			return err
		},
		"UpdateUser": func() error {
			_, err := c.UpdateUser(ctx, &userv1.UpdateUserRequest{Id: id, Name: proto.String("N")})
			return err
		},
		"DeleteUser": func() error {
			_, err := c.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: id})
			return err
		},
	}
	for _, method := range sortedKeys(calls) {
		t.Run(method, func(t *testing.T) {
			err := calls[method]()
			if status.Code(err) != codes.Internal {
				t.Fatalf("code = %v (%v), want Internal", status.Code(err), err)
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, "SELEC") {
				t.Errorf("message %q leaks the store error", msg)
			}
			r := <-records
			a := attrs(r)
			if r.Level != slog.LevelError || a["method"].String() != method || a["error"].String() != errBoom.Error() {
				t.Errorf("logged %v %q %v, want an error record with method %q and the store error", r.Level, r.Message, a, method)
			}
		})
	}
}

func TestServerContextErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	// check calls srv with each kind of done context.
	check := func(t *testing.T, srv *Server) {
		tests := []struct {
			name string
			ctx  context.Context
			want codes.Code
		}{
			{name: "canceled", ctx: canceled, want: codes.Canceled},
			{name: "expired", ctx: expired, want: codes.DeadlineExceeded},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := srv.CreateUser(tt.ctx, &userv1.CreateUserRequest{Name: "N", Email: "n@example.com"})
				if got := status.Code(err); got != tt.want {
					t.Errorf("CreateUser: code %v (%v), want %v", got, err, tt.want)
				}
				_, err = srv.ListUsers(tt.ctx, &userv1.ListUsersRequest{})
				if got := status.Code(err); got != tt.want {
					t.Errorf("ListUsers: code %v (%v), want %v", got, err, tt.want)
				}
			})
		}
	}
	forEachBackend(t, func(t *testing.T, b backend) { check(t, NewServer(b.newStore(t))) })
	// fakeStore stands in for a driver that reports an interrupted query as
	// its own error.
	t.Run("driver error", func(t *testing.T) { check(t, NewServer(&fakeStore{err: errBoom})) })
}

func TestServerConcurrentCreateSameEmail(t *testing.T) {
	forEachBackend(t, testServerConcurrentCreateSameEmail)
}

func testServerConcurrentCreateSameEmail(t *testing.T, b backend) {
	c := startServer(t, b.newStore(t))
	const n = 20
	codesSeen := make([]codes.Code, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := c.CreateUser(t.Context(), &userv1.CreateUserRequest{Name: "Same", Email: "same@example.com"})
			codesSeen[i] = status.Code(err)
		})
	}
	wg.Wait()
	got := make(map[codes.Code]int)
	for _, code := range codesSeen {
		got[code]++
	}
	if diff := cmp.Diff(map[codes.Code]int{codes.OK: 1, codes.AlreadyExists: n - 1}, got); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
}

// TestServerStoreUnavailable: a passing failure of the database is
// Unavailable, which callers may retry, not Internal.
func TestServerStoreUnavailable(t *testing.T) {
	c := startServer(t, &fakeStore{err: fmt.Errorf("user: postgres: get: %w: %w", ErrUnavailable, errBoom)})
	_, err := c.GetUser(t.Context(), &userv1.GetUserRequest{Id: uuid.NewString()})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("GetUser on an unavailable store: %v, want Unavailable", err)
	}
}
