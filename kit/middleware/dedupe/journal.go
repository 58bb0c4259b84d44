package dedupe

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
)

// JournalTable is the table a [Journal] keeps its records in.
const JournalTable = "grpckit_dedupe"

// Dialect is the SQL database a [Journal] runs on.
type Dialect int

// The dialects a [Journal] knows.
const (
	// SQLite: "?" bind parameters (for example modernc.org/sqlite).
	SQLite Dialect = iota + 1
	// PostgreSQL: "$1" bind parameters (for example pgx's stdlib driver),
	// READ COMMITTED transactions (the default).
	PostgreSQL
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case PostgreSQL:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// Journal records the results of deduplicated calls in the service's own SQL
// database, in the transaction of the write each call makes, so that a
// retry of the call returns the first result from whichever instance of the
// service it reaches, and the write is done once.
//
// A handler that writes runs, in one transaction: [Journal.Claim] with the
// call's [Request] (from [FromContext]); when Claim reports the call as
// already done, the recorded response is the answer and nothing is written;
// else the write, then [Journal.Record] of the response, then the commit.
// An error rolls everything back, the claim included, so a call that failed
// is not recorded: it changed nothing and may run again. A duplicate that
// arrives while the first call's transaction is open waits at Claim (on the
// key's unique index, or on SQLite's write lock) until it commits or rolls
// back. Records are kept until [Journal.Prune] removes them; a service prunes
// records older than the longest time it expects a client to retry (the
// user service keeps them 24 hours).
//
// The table ([Journal.Schema]) is keyed by (caller, method, request_id) and
// holds the SHA-256 of the request, the response (proto wire encoding) and
// the creation time in microseconds since the Unix epoch. A Journal is
// immutable and safe for concurrent use.
type Journal struct {
	dialect Dialect
	schema  []string
	claim   string
	lookup  string
	record  string
	prune   string
}

// NewJournal returns the journal for a database of dialect d, or an error
// for an unknown dialect.
func NewJournal(d Dialect) (*Journal, error) {
	var blob, bigint, strict string
	switch d {
	case SQLite:
		blob, bigint, strict = "BLOB", "INTEGER", " STRICT"
	case PostgreSQL:
		blob, bigint = "BYTEA", "BIGINT"
	default:
		return nil, fmt.Errorf("dedupe: journal: unknown dialect %v", d)
	}
	const key = ` WHERE caller = ? AND method = ? AND request_id = ?`
	return &Journal{
		dialect: d,
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ` + JournalTable + ` (
	caller       ` + blob + ` NOT NULL,
	method       TEXT NOT NULL,
	request_id   TEXT NOT NULL,
	request_hash ` + blob + ` NOT NULL,
	response     ` + blob + `,
	create_time  ` + bigint + ` NOT NULL,
	PRIMARY KEY (caller, method, request_id)
)` + strict,
			`CREATE INDEX IF NOT EXISTS ` + JournalTable + `_create_time ON ` + JournalTable + ` (create_time)`,
		},
		claim: d.Rebind(`INSERT INTO ` + JournalTable + ` (caller, method, request_id, request_hash, create_time)` +
			` VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		lookup: d.Rebind(`SELECT request_hash, response IS NOT NULL, response FROM ` + JournalTable + key),
		record: d.Rebind(`UPDATE ` + JournalTable + ` SET response = ?` + key),
		prune:  d.Rebind(`DELETE FROM ` + JournalTable + ` WHERE create_time < ?`),
	}, nil
}

// Schema returns the statements that create the journal's table and its
// index when they are missing (CREATE ... IF NOT EXISTS). Run them with the
// service's own schema.
func (j *Journal) Schema() []string { return append([]string(nil), j.schema...) }

// Claim starts the call r in tx. It inserts r's record and returns true when
// the call is new: the caller then writes and calls [Journal.Record] before
// committing. When the call is already recorded (committed by any process),
// it decodes the recorded response into replay and returns false; the
// caller answers with replay and writes nothing. It returns
// [ErrRequestIDReused] when the record is of a different request (another
// [Request.Hash]). A duplicate whose first call is in a transaction still
// open waits here until that transaction ends.
func (j *Journal) Claim(ctx context.Context, tx *sql.Tx, r Request, replay proto.Message) (claimed bool, err error) {
	res, err := tx.ExecContext(ctx, j.claim, []byte(r.Caller), r.Method, r.ID, r.Hash[:], time.Now().UnixMicro())
	if err != nil {
		return false, fmt.Errorf("dedupe: journal: claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("dedupe: journal: claim: %w", err)
	} else if n == 1 {
		return true, nil
	}
	var (
		hash, resp []byte
		recorded   bool // a driver may read an empty BLOB as nil, like NULL
	)
	if err := tx.QueryRowContext(ctx, j.lookup, []byte(r.Caller), r.Method, r.ID).Scan(&hash, &recorded, &resp); err != nil {
		return false, fmt.Errorf("dedupe: journal: lookup: %w", err)
	}
	var first [sha256.Size]byte
	if len(hash) != len(first) {
		return false, fmt.Errorf("dedupe: journal: the recorded request hash has %d bytes", len(hash))
	}
	copy(first[:], hash)
	if !sameRequest(first, r.Hash) {
		return false, ErrRequestIDReused
	}
	if !recorded {
		return false, errors.New("dedupe: journal: the call is claimed in this transaction and has no response yet")
	}
	if err := proto.Unmarshal(resp, replay); err != nil {
		return false, fmt.Errorf("dedupe: journal: decode the recorded response: %w", err)
	}
	return false, nil
}

// Record stores resp as the result of the call r that [Journal.Claim]
// claimed in tx. It fails when r is not claimed in tx.
func (j *Journal) Record(ctx context.Context, tx *sql.Tx, r Request, resp proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp)
	if err != nil {
		return fmt.Errorf("dedupe: journal: encode the response: %w", err)
	}
	if b == nil {
		b = []byte{} // an empty message is a response; NULL is none yet
	}
	res, err := tx.ExecContext(ctx, j.record, b, []byte(r.Caller), r.Method, r.ID)
	if err != nil {
		return fmt.Errorf("dedupe: journal: record: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("dedupe: journal: record: %w", err)
	} else if n != 1 {
		return errors.New("dedupe: journal: record: the call was not claimed")
	}
	return nil
}

// Prune deletes the records created before t and returns how many it
// deleted. It is one indexed DELETE; run it from time to time (the user
// service runs it at most every 10 minutes per process, after a write), so
// that each run has little to delete.
func (j *Journal) Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, j.prune, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("dedupe: journal: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("dedupe: journal: prune: %w", err)
	}
	return n, nil
}

// Rebind replaces the "?" markers of query with d's bind parameters ("$1",
// "$2", ... for PostgreSQL; SQLite keeps "?"), for a store that writes its
// SQL once for both. query must have no "?" inside literals.
func (d Dialect) Rebind(query string) string {
	if d != PostgreSQL {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}
