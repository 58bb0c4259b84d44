// Package user implements the user.v1.UserService gRPC service
// ([github.com/grpckit/grpckit/proto/user/v1.UserServiceServer]) on top of a
// [Store].
//
// [Server] validates requests, converts [Store] errors to gRPC status codes
// and pages through users by opaque tokens. [SQLStore] is the [Store] on
// database/sql; [OpenSQLite] opens one on a SQLite file that several
// processes on the same host may share (WAL journal, busy timeout, immediate
// write transactions), and [OpenPostgres] one on a PostgreSQL database that
// processes on any hosts may share (pgx driver, advisory locks). Both
// behave the same.
//
// Users are identified by UUIDv7 strings assigned by the store, so the order
// of ids is the order of creation and ListUsers returns users in that order.
// Emails are unique.
//
// Writes are exactly-once across instances for deduplicated calls: a client
// that stamps a request id on CreateUser, UpdateUser and DeleteUser
// (kit.WithDedupedMethods) and retries a call whose response was lost gets
// the first result from whichever instance the retry reaches, because
// [SQLStore] records each call with its write in one transaction
// (kit/middleware/dedupe's Journal; see [SQLStore]).
package user
