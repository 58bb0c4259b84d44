package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/grpckit/grpckit/internal/repo"
)

// The test binary's server, started by the first [Start] and stopped by
// [StopAfter]'s Run.
var (
	wrapped   atomic.Bool // StopAfter's Run is running the tests
	startOnce sync.Once
	shared    *server
	startErr  error
	dbCount   atomic.Int64 // numbers the databases
)

// startTimeout bounds scripts/ensure-postgres.sh, which may install
// PostgreSQL, and starting the server.
const startTimeout = 10 * time.Minute

// Start returns the URL of a new, empty database for t, such as
// postgres://grpckit@127.0.0.1:41234/t_3_teststore?sslmode=disable, on the
// test binary's PostgreSQL server, which the first call starts. The database
// is dropped, with any connections left to it, when t ends. The connecting
// user is a superuser; every connection from loopback is trusted.
//
// Start skips t under -short and fails it when the server cannot be found,
// installed or started. The package's TestMain must run the tests through
// [StopAfter]. Start is safe for concurrent use by parallel tests.
func Start(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a PostgreSQL server; skipped with -short")
	}
	if !wrapped.Load() {
		t.Fatal("pgtest: TestMain must run the tests through pgtest.StopAfter, which stops the server")
	}
	startOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		var binDir string
		if binDir, startErr = findBinaries(ctx); startErr == nil {
			shared, startErr = startServer(ctx, binDir)
		}
	})
	if startErr != nil {
		t.Fatalf("no PostgreSQL server: %v", startErr)
	}
	name := dbName(t.Name(), dbCount.Add(1))
	if err := shared.createDB(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is canceled by now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := shared.dropDB(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return shared.dsn(name)
}

// TestingM is what [StopAfter] wraps: a *testing.M, or a wrapper of one.
type TestingM interface {
	Run() int
}

// StopAfter returns m with a Run that runs m's tests and then stops the
// server [Start] started, if any, and removes its data. A package that calls
// Start runs its tests through it, inside goleak's check when it has one:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.StopAfter(m)) }
//
// or else os.Exit(pgtest.StopAfter(m).Run()). Should the test binary die
// first (killed, or timed out), the server shuts down with it and a later
// server start removes the data left behind once it is an hour old.
func StopAfter(m TestingM) TestingM { return stopAfter{m} }

type stopAfter struct{ m TestingM }

func (s stopAfter) Run() int {
	wrapped.Store(true)
	defer func() {
		if shared != nil {
			shared.stop()
		}
	}()
	return s.m.Run()
}

// findBinaries returns the directory of PostgreSQL's server programs, as
// scripts/ensure-postgres.sh prints it.
func findBinaries(ctx context.Context) (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "ensure-postgres.sh"))
	cmd.Stderr = os.Stderr // progress of an installation
	// On cancellation let the script stop apt-get, rather than orphan it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pgtest: scripts/ensure-postgres.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// dbName returns the name of the n-th database, for the test named test: a
// valid unquoted identifier of at most 63 bytes that names the test.
func dbName(test string, n int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t_%d_", n)
	for _, r := range strings.ToLower(test) {
		if b.Len() == 63 {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
