package user

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

// The tests of the [Store] behaviour that every [SQLStore] backend shares.

func TestStore(t *testing.T) { forEachBackend(t, testStore) }

func testStore(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.newStore(t)
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
		// cmp compares times with Equal, which ignores the location.
		for _, tm := range []time.Time{got.CreateTime, got.UpdateTime} {
			if tm.Location() != time.UTC || tm.Nanosecond()%1000 != 0 {
				t.Errorf("time %v is not UTC in whole microseconds", tm)
			}
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
		// PostgreSQL text holds neither NUL nor invalid UTF-8; no id does.
		{name: "Get NUL id", call: func() error { _, err := s.Get(ctx, "a\x00b"); return err }, want: ErrNotFound},
		{name: "Get non-UTF-8 id", call: func() error { _, err := s.Get(ctx, "a\xffb"); return err }, want: ErrNotFound},
		{name: "Update NUL id", call: func() error { _, err := s.Update(ctx, "a\x00b", Patch{Name: str("N")}); return err }, want: ErrNotFound},
		{name: "Delete non-UTF-8 id", call: func() error { return s.Delete(ctx, "\xff") }, want: ErrNotFound},
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

func TestStoreCanceled(t *testing.T) { forEachBackend(t, testStoreCanceled) }

func testStoreCanceled(t *testing.T, b backend) {
	s := b.newStore(t)
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

func TestStoreReopen(t *testing.T) { forEachBackend(t, testStoreReopen) }

func testStoreReopen(t *testing.T, b backend) {
	open := b.newDB(t)
	s, err := open(t.Context())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	u, err := s.Create(t.Context(), "Alice", "alice@example.com")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openStore(t, open)
	got, err := s.Get(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("Get after reopening (-want +got):\n%s", diff)
	}
}

// TestStoreTwoStores stands in for two processes sharing one database: both
// open it at once (racing to create the schema) and write concurrently.
func TestStoreTwoStores(t *testing.T) { forEachBackend(t, testStoreTwoStores) }

func testStoreTwoStores(t *testing.T, b backend) {
	ctx := t.Context()
	open := b.newDB(t)
	const (
		stores     = 2
		writers    = 5 // per store
		perWriter  = 10
		totalUsers = stores * writers * perWriter
	)
	ss := openStores(t, open, stores)

	createErrs := make(chan error, totalUsers)
	var wg sync.WaitGroup
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

// openStores opens n stores with open at once, as n processes starting
// together would, and closes them on cleanup.
func openStores(t *testing.T, open opener, n int) []*SQLStore {
	t.Helper()
	ss := make([]*SQLStore, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ss {
		wg.Go(func() { ss[i], errs[i] = open(t.Context()) })
	}
	wg.Wait()
	for i, s := range ss {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
		if errs[i] != nil {
			t.Errorf("open store %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return ss
}

// compareTimes orders users by CreateTime.
func compareTimes(a, b User) int { return a.CreateTime.Compare(b.CreateTime) }

func TestDialectRebind(t *testing.T) {
	tests := []struct {
		name  string
		d     dialect
		query string
		want  string
	}{
		{name: "sqlite", d: sqliteDialect, query: sqlUpdate, want: sqlUpdate},
		{
			name:  "dollar",
			d:     dialect{journal: dedupe.PostgreSQL},
			query: sqlUpdate,
			want: "UPDATE users SET name = COALESCE($1, name), email = COALESCE($2, email), update_time = $3" +
				" WHERE id = $4 RETURNING id, name, email, create_time, update_time",
		},
		{name: "dollar list", d: dialect{journal: dedupe.PostgreSQL}, query: sqlList, want: "SELECT id, name, email, create_time, update_time FROM users WHERE id > $1 ORDER BY id LIMIT $2"},
		{name: "postgres", d: pgDialect, query: sqlInsert, want: "INSERT INTO users (id, name, email, create_time, update_time) VALUES ($1, $2, $3, $4, $5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.d.rebind(tt.query)); diff != "" {
				t.Errorf("rebind (-want +got):\n%s", diff)
			}
		})
	}
}
