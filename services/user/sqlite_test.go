package user

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOpenSQLitePragmas(t *testing.T) {
	s := newTestStore(t)
	tests := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "busy_timeout", want: "5000"},
	}
	for _, tt := range tests {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

func TestOpenSQLiteBadPath(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:users.db", filepath.Join(t.TempDir(), "users.db?mode=ro")} {
		if s, err := OpenSQLite(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded, want an error", path)
		}
	}
}

func TestOpenSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	u, err := s.Create(t.Context(), "Alice", "alice@example.com")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite again: %v", err)
	}
	defer s.Close()
	got, err := s.Get(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("Get after reopening (-want +got):\n%s", diff)
	}
}

func TestSQLStore(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t)
	alice, err := s.Create(ctx, "Alice", "alice@example.com")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	bob, err := s.Create(ctx, "Bob", "bob@example.com")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if alice.ID >= bob.ID {
		t.Errorf("ids %q, %q are not in creation order", alice.ID, bob.ID)
	}
	str := func(s string) *string { return &s }

	t.Run("Get", func(t *testing.T) {
		got, err := s.Get(ctx, alice.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if diff := cmp.Diff(alice, got); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
	})
	t.Run("List", func(t *testing.T) {
		tests := []struct {
			size  int
			after string
			want  []User
		}{
			{size: 10, want: []User{alice, bob}},
			{size: 1, want: []User{alice}},
			{size: 10, after: alice.ID, want: []User{bob}},
			{size: 10, after: bob.ID, want: []User{}},
			{size: 0, want: nil},
		}
		for _, tt := range tests {
			got, err := s.List(ctx, tt.size, tt.after)
			if err != nil {
				t.Fatalf("List(%d, %q): %v", tt.size, tt.after, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("List(%d, %q) (-want +got):\n%s", tt.size, tt.after, diff)
			}
		}
	})
	t.Run("Update empty patch", func(t *testing.T) {
		got, err := s.Update(ctx, alice.ID, Patch{})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		if diff := cmp.Diff(alice, got); diff != "" {
			t.Errorf("Update with an empty patch (-want +got):\n%s", diff)
		}
	})

	errTests := []struct {
		name string
		call func() error
		want error
	}{
		{name: "Create taken", call: func() error { _, err := s.Create(ctx, "A", "bob@example.com"); return err }, want: ErrEmailTaken},
		{name: "Get missing", call: func() error { _, err := s.Get(ctx, "missing"); return err }, want: ErrNotFound},
		{name: "Update missing", call: func() error { _, err := s.Update(ctx, "missing", Patch{Name: str("N")}); return err }, want: ErrNotFound},
		{name: "Update empty patch missing", call: func() error { _, err := s.Update(ctx, "missing", Patch{}); return err }, want: ErrNotFound},
		{name: "Update taken", call: func() error { _, err := s.Update(ctx, alice.ID, Patch{Email: str("bob@example.com")}); return err }, want: ErrEmailTaken},
		{name: "Delete missing", call: func() error { return s.Delete(ctx, "missing") }, want: ErrNotFound},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("Delete", func(t *testing.T) {
		if err := s.Delete(ctx, bob.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, bob.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
	})
}

func TestSQLStoreCanceled(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { _, err := s.Create(ctx, "N", "n@example.com"); return err }},
		{"Get", func() error { _, err := s.Get(ctx, "id"); return err }},
		{"List", func() error { _, err := s.List(ctx, 10, ""); return err }},
		{"Update", func() error { n := "N"; _, err := s.Update(ctx, "id", Patch{Name: &n}); return err }},
		{"Delete", func() error { return s.Delete(ctx, "id") }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", c.name, err)
		}
	}
	users, err := s.List(t.Context(), 10, "")
	if err != nil || len(users) != 0 {
		t.Errorf("List = %v, %v; want no users", users, err)
	}
}

// TestSQLiteTwoStores stands in for two processes sharing one file: both
// open it at once (racing to create the schema) and write concurrently.
func TestSQLiteTwoStores(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "users.db")
	const (
		stores     = 2
		writers    = 5 // per store
		perWriter  = 10
		totalUsers = stores * writers * perWriter
	)
	ss := make([]*SQLStore, stores)
	errs := make([]error, stores)
	var wg sync.WaitGroup
	for i := range ss {
		wg.Go(func() { ss[i], errs[i] = OpenSQLite(ctx, path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("OpenSQLite %d: %v", i, err)
		}
		t.Cleanup(func() { ss[i].Close() })
	}

	createErrs := make(chan error, totalUsers)
	for i, s := range ss {
		for w := range writers {
			wg.Go(func() {
				for n := range perWriter {
					_, err := s.Create(ctx, "U", fmt.Sprintf("s%d-w%d-n%d@example.com", i, w, n))
					createErrs <- err
				}
			})
		}
	}
	wg.Wait()
	close(createErrs)
	for err := range createErrs {
		if err != nil {
			t.Errorf("Create: %v", err)
		}
	}

	var wantEmails []string
	for i := range stores {
		for w := range writers {
			for n := range perWriter {
				wantEmails = append(wantEmails, fmt.Sprintf("s%d-w%d-n%d@example.com", i, w, n))
			}
		}
	}
	slices.Sort(wantEmails)
	var first []User
	for i, s := range ss {
		users, err := s.List(ctx, totalUsers+1, "")
		if err != nil {
			t.Fatalf("store %d: List: %v", i, err)
		}
		var emails []string
		for _, u := range users {
			emails = append(emails, u.Email)
		}
		slices.Sort(emails)
		if diff := cmp.Diff(wantEmails, emails); diff != "" {
			t.Errorf("store %d: emails (-want +got):\n%s", i, diff)
		}
		if !slices.IsSortedFunc(users, compareTimes) {
			t.Errorf("store %d: users in id order are not in creation order", i)
		}
		if i == 0 {
			first = users
		} else if diff := cmp.Diff(first, users); diff != "" {
			t.Errorf("store %d sees other users than store 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
}

// compareTimes orders users by CreateTime.
func compareTimes(a, b User) int { return a.CreateTime.Compare(b.CreateTime) }

func TestDialectRebind(t *testing.T) {
	dollar := func(n int) string { return "$" + strconv.Itoa(n) }
	tests := []struct {
		name  string
		d     dialect
		query string
		want  string
	}{
		{name: "sqlite", d: sqliteDialect, query: sqlUpdate, want: sqlUpdate},
		{
			name:  "dollar",
			d:     dialect{placeholder: dollar},
			query: sqlUpdate,
			want: "UPDATE users SET name = COALESCE($1, name), email = COALESCE($2, email), update_time = $3" +
				" WHERE id = $4 RETURNING id, name, email, create_time, update_time",
		},
		{name: "dollar list", d: dialect{placeholder: dollar}, query: sqlList, want: "SELECT id, name, email, create_time, update_time FROM users WHERE id > $1 ORDER BY id LIMIT $2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.d.rebind(tt.query)); diff != "" {
				t.Errorf("rebind (-want +got):\n%s", diff)
			}
		})
	}
}

// Environment of [TestSQLiteWriterProcess], set by [TestSQLiteTwoProcesses].
const (
	envWriterDB     = "USER_TEST_WRITER_DB"
	envWriterPrefix = "USER_TEST_WRITER_PREFIX"
)

const writerProcessUsers = 50

// TestSQLiteWriterProcess is the child process of [TestSQLiteTwoProcesses]:
// it creates writerProcessUsers users in the database named by the
// environment. It skips when run as an ordinary test.
func TestSQLiteWriterProcess(t *testing.T) {
	path, prefix := os.Getenv(envWriterDB), os.Getenv(envWriterPrefix)
	if path == "" {
		t.Skip("helper process for TestSQLiteTwoProcesses")
	}
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer s.Close()
	for n := range writerProcessUsers {
		if _, err := s.Create(t.Context(), "U", fmt.Sprintf("%s-%d@example.com", prefix, n)); err != nil {
			t.Fatalf("Create %d: %v", n, err)
		}
	}
}

// TestSQLiteTwoProcesses runs two processes that open one new file at once
// and write to it concurrently.
func TestSQLiteTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "users.db")
	prefixes := []string{"p0", "p1"}
	cmds := make([]*exec.Cmd, len(prefixes))
	outs := make([]*bytes.Buffer, len(prefixes))
	for i, prefix := range prefixes {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLiteWriterProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), envWriterDB+"="+path, envWriterPrefix+"="+prefix)
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatalf("start writer %s: %v", prefix, err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %s: %v\n%s", prefixes[i], err, outs[i])
		}
	}
	if t.Failed() {
		return
	}

	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer s.Close()
	users, err := s.List(t.Context(), 1000, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var want, got []string
	for _, prefix := range prefixes {
		for n := range writerProcessUsers {
			want = append(want, fmt.Sprintf("%s-%d@example.com", prefix, n))
		}
	}
	for _, u := range users {
		got = append(got, u.Email)
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("emails (-want +got):\n%s", diff)
	}
	if !slices.IsSortedFunc(users, compareTimes) {
		t.Errorf("users in id order are not in creation order")
	}
}
