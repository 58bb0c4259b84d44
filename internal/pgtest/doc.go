// Package pgtest runs a throwaway PostgreSQL server for tests: [Start] gives
// each test a new database on a server shared by the test binary, which
// [StopAfter] stops when the tests are done.
//
// The server's programs (initdb, postgres) come from
// scripts/ensure-postgres.sh, which finds them or installs Debian's
// postgresql package. PostgreSQL refuses to run as root, so a test binary
// running as root runs them as the unprivileged postgres user.
package pgtest
