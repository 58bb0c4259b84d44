package dedupe_test

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

// newJournal returns a SQLite journal on an in-memory database with its
// schema.
func newJournal(t *testing.T) (*dedupe.Journal, *kittest.SQLDB, *sql.DB) {
	t.Helper()
	j, err := dedupe.NewJournal(dedupe.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	mem, db := kittest.NewSQLDB()
	t.Cleanup(func() { db.Close() })
	for _, stmt := range j.Schema() {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	return j, mem, db
}

func request(caller, id, body string) dedupe.Request {
	return dedupe.Request{Caller: caller, Method: create, ID: id, Hash: dedupe.HashRequest(wrapperspb.String(body))}
}

// once runs the call r in a transaction as a handler does: claim, write
// (counted by the database) and record resp, or replay. It returns the
// answer and whether it was replayed.
func once(t *testing.T, j *dedupe.Journal, db *sql.DB, r dedupe.Request, resp string) (answer string, replayed bool, err error) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	first := &wrapperspb.StringValue{}
	claimed, err := j.Claim(t.Context(), tx, r, first)
	if err != nil {
		return "", false, err
	}
	if !claimed {
		return first.GetValue(), true, nil
	}
	if _, err := tx.ExecContext(t.Context(), "INSERT INTO writes (v) VALUES (?)", resp); err != nil {
		t.Fatal(err)
	}
	if err := j.Record(t.Context(), tx, r, wrapperspb.String(resp)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return resp, false, nil
}

func TestJournalClaimRecordReplay(t *testing.T) {
	j, mem, db := newJournal(t)
	for _, tc := range []struct {
		name         string
		r            dedupe.Request
		resp         string
		want         string
		wantReplayed bool
		wantErr      error
	}{
		{"first", request("alice", "r1", "a"), "first", "first", false, nil},
		{"retry", request("alice", "r1", "a"), "second", "first", true, nil},
		{"other body", request("alice", "r1", "b"), "third", "", false, dedupe.ErrRequestIDReused},
		{"other caller", request("bob", "r1", "a"), "bob's", "bob's", false, nil},
		{"other id", request("alice", "r2", "a"), "r2", "r2", false, nil},
		{"unknown hash matches", dedupe.Request{Caller: "alice", Method: create, ID: "r1"}, "x", "first", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, replayed, err := once(t, j, db, tc.r, tc.resp)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want || replayed != tc.wantReplayed {
				t.Errorf("answer %q (replayed %v), want %q (replayed %v)", got, replayed, tc.want, tc.wantReplayed)
			}
		})
	}
	if got := mem.Rows("writes"); got != 3 {
		t.Errorf("%d writes, want 3", got)
	}
	if got := mem.Rows(dedupe.JournalTable); got != 3 {
		t.Errorf("%d records, want 3", got)
	}
}

// TestJournalRollbackForgets checks that a call whose transaction rolled
// back is not recorded: its retry runs.
func TestJournalRollbackForgets(t *testing.T) {
	j, mem, db := newJournal(t)
	r := request("alice", "r1", "a")
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if claimed, err := j.Claim(t.Context(), tx, r, &emptypb.Empty{}); err != nil || !claimed {
		t.Fatalf("Claim = %v, %v; want a claim", claimed, err)
	}
	tx.Rollback()
	if _, replayed, err := once(t, j, db, r, "after"); err != nil || replayed {
		t.Errorf("after a rollback: replayed %v, %v; want a run", replayed, err)
	}
	if got := mem.Rows("writes"); got != 1 {
		t.Errorf("%d writes, want 1", got)
	}
}

// TestJournalDuplicateWaits starts a duplicate while the first call's
// transaction is open: it waits and gets the first response.
func TestJournalDuplicateWaits(t *testing.T) {
	j, mem, db := newJournal(t)
	r := request("alice", "r1", "a")
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if claimed, err := j.Claim(t.Context(), tx, r, &wrapperspb.StringValue{}); err != nil || !claimed {
		t.Fatalf("Claim = %v, %v; want a claim", claimed, err)
	}
	type result struct {
		answer   string
		replayed bool
		err      error
	}
	dup := make(chan result, 1)
	go func() {
		answer, replayed, err := once(t, j, db, r, "duplicate")
		dup <- result{answer, replayed, err}
	}()
	select {
	case got := <-dup:
		t.Fatalf("the duplicate did not wait for the open transaction: %+v", got)
	case <-time.After(50 * time.Millisecond): // a bounded wait for something that must not happen
	}
	if err := j.Record(t.Context(), tx, r, wrapperspb.String("first")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := <-dup; got.err != nil || !got.replayed || got.answer != "first" {
		t.Errorf("duplicate: %+v, want the replay of first", got)
	}
	if got := mem.Rows("writes"); got != 0 {
		t.Errorf("%d writes by the duplicate, want 0", got)
	}
}

func TestJournalRecordNeedsClaim(t *testing.T) {
	j, _, db := newJournal(t)
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := j.Record(t.Context(), tx, request("alice", "r1", "a"), &emptypb.Empty{}); err == nil {
		t.Error("Record without Claim succeeded")
	}
}

// TestJournalEmptyResponse checks that an empty response is recorded and
// replayed (it encodes to no bytes).
func TestJournalEmptyResponse(t *testing.T) {
	j, _, db := newJournal(t)
	r := request("alice", "r1", "a")
	for i := range 2 {
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := &emptypb.Empty{}
		claimed, err := j.Claim(t.Context(), tx, r, got)
		if err != nil || claimed != (i == 0) {
			t.Fatalf("call %d: Claim = %v, %v", i, claimed, err)
		}
		if claimed {
			if err := j.Record(t.Context(), tx, r, &emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
		} else if diff := cmp.Diff(&emptypb.Empty{}, got, protocmp.Transform()); diff != "" {
			t.Errorf("replay (-want +got):\n%s", diff)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJournalPrune(t *testing.T) {
	j, mem, db := newJournal(t)
	before := time.Now()
	for _, id := range []string{"r1", "r2"} {
		if _, _, err := once(t, j, db, request("alice", id, "a"), id); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := j.Prune(t.Context(), db, before); err != nil || n != 0 {
		t.Errorf("Prune(before the records) = %d, %v; want 0", n, err)
	}
	if n, err := j.Prune(t.Context(), db, time.Now().Add(time.Second)); err != nil || n != 2 {
		t.Errorf("Prune(after the records) = %d, %v; want 2", n, err)
	}
	if got := mem.Rows(dedupe.JournalTable); got != 0 {
		t.Errorf("%d records left, want 0", got)
	}
}

func TestJournalDialects(t *testing.T) {
	if _, err := dedupe.NewJournal(dedupe.Dialect(0)); err == nil {
		t.Error("NewJournal accepted dialect 0")
	}
	for _, tc := range []struct {
		d        dedupe.Dialect
		name     string
		wantType string
	}{{dedupe.SQLite, "sqlite", "BLOB"}, {dedupe.PostgreSQL, "postgres", "BYTEA"}} {
		j, err := dedupe.NewJournal(tc.d)
		if err != nil {
			t.Fatal(err)
		}
		if tc.d.String() != tc.name {
			t.Errorf("String() = %q, want %q", tc.d.String(), tc.name)
		}
		if s := strings.Join(j.Schema(), ";"); !strings.Contains(s, tc.wantType) || !strings.Contains(s, dedupe.JournalTable) {
			t.Errorf("%v schema %q lacks %s or the table name", tc.d, s, tc.wantType)
		}
	}
}
