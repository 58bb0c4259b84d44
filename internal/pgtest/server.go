package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grpckit/grpckit/internal/loopback"
)

// superuser is the role initdb creates; every connection is trusted.
const superuser = "grpckit"

const (
	// readyTimeout bounds waiting for a started server to accept connections.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long stop waits for an immediate shutdown before
	// it kills the server's processes.
	stopTimeout = 10 * time.Second
)

// dirPrefix starts the names of the servers' directories in TMPDIR.
const dirPrefix = "grpckit-pgtest-"

// server is a running PostgreSQL server on 127.0.0.1 whose data lives in a
// temporary directory. Its methods other than stop are safe for concurrent
// use.
type server struct {
	dir  string // data/, the Unix socket and postgres.log; removed by stop
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File      // the server's output
}

// startServer initializes a data directory with the programs in binDir and
// starts a server on it, on a free loopback port, tuned for tests (no
// fsync, minimal WAL). It returns once the server accepts connections.
func startServer(ctx context.Context, binDir string) (_ *server, err error) {
	r, err := newRunner()
	if err != nil {
		return nil, err
	}
	removeStale()
	// Short and under TMPDIR: the socket's path must fit in 107 bytes.
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &server{dir: dir}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if err := r.own(dir); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if s.log, err = os.Create(filepath.Join(dir, "postgres.log")); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}

	data := filepath.Join(dir, "data")
	initdb := r.command(syscall.SIGKILL, filepath.Join(binDir, "initdb"), "-D", data, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir // the postgres user may not enter the working directory
	initdb.Stdout, initdb.Stderr = s.log, s.log
	if err := runContext(ctx, initdb); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, s.logTail())
	}

	// A port picked as free may be taken before the server binds it, by
	// another test binary's server for instance: try a few.
	for attempt := 1; ; attempt++ {
		if s.port, err = loopback.FreePort(); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		// On the test binary's death, SIGQUIT makes the server stop
		// its children and release its shared memory.
		cmd := r.command(syscall.SIGQUIT, filepath.Join(binDir, "postgres"), "-D", data,
			"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", dir, "-F",
			"-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "wal_level=minimal", "-c", "max_wal_senders=0", // faster CREATE DATABASE
			"-c", "max_connections=200")
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = s.log, s.log
		exited, err := s.run(ctx, cmd)
		switch {
		case err == nil:
			return s, nil
		case !exited || attempt == 3:
			return nil, err
		}
	}
}

// runContext runs cmd, killing its process group when ctx is done.
func runContext(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { signalGroup(cmd, syscall.SIGKILL) })
	defer stop()
	err := cmd.Wait()
	if ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// run starts the server command cmd and waits until the server accepts
// connections, it exits, or ctx is done or readyTimeout passes. exited
// reports whether the server exited by itself, as when its port is taken.
func (s *server) run(ctx context.Context, cmd *exec.Cmd) (exited bool, err error) {
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := s.connect(ctx, "postgres")
		if err == nil {
			conn.Close(ctx)
			return false, nil
		}
		select {
		case <-s.done:
			s.cmd = nil
			return true, fmt.Errorf("pgtest: postgres exited during start-up: %v\n%s", cmd.ProcessState, s.logTail())
		case <-ctx.Done():
			s.stopServer()
			return false, fmt.Errorf("pgtest: postgres on port %d does not accept connections: %w (last: %v)\n%s",
				s.port, ctx.Err(), err, s.logTail())
		case <-tick.C:
		}
	}
}

// dsn returns the URL of database db.
func (s *server) dsn(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// connect opens a connection to database db.
func (s *server) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.dsn(db))
}

// exec runs the statement sql on the maintenance database.
func (s *server) exec(ctx context.Context, sql string) error {
	conn, err := s.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// createDB creates the empty database name.
func (s *server) createDB(ctx context.Context, name string) error {
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return nil
}

// dropDB drops the database name, closing its connections.
func (s *server) dropDB(ctx context.Context, name string) error {
	if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// stop stops the server, if it runs, and removes its directory.
func (s *server) stop() {
	s.stopServer()
	if s.log != nil {
		s.log.Close()
	}
	os.RemoveAll(s.dir)
}

// stopServer shuts the server down at once (SIGQUIT: the postmaster ends its
// children, each in a process group of its own, and exits without a
// checkpoint) and waits for it to exit, killing its process group after
// stopTimeout; the children then exit as they see the postmaster gone.
func (s *server) stopServer() {
	if s.cmd == nil {
		return
	}
	signalGroup(s.cmd, syscall.SIGQUIT)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		signalGroup(s.cmd, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// removeStale removes the directories that servers of test binaries that
// died (killed, or timed out) left behind: those older than an hour whose
// server does not run.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < time.Hour || serverRuns(dir) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// serverRuns reports whether the server whose directory is dir runs, as far
// as this process can tell (the first line of postmaster.pid is its pid).
func serverRuns(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(line)
	return err == nil && processExists(pid)
}

// logTail returns the last lines of the server's output.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
