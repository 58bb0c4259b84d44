package user

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
