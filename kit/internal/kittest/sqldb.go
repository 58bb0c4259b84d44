package kittest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
)

// SQLDB is an in-memory database/sql database that understands just the
// statements of dedupe.Journal in the SQLite dialect (CREATE, and INSERT ...
// ON CONFLICT DO NOTHING, SELECT, UPDATE, DELETE on grpckit_dedupe), plus
// "INSERT INTO <table> ..." into any other table, which only counts rows
// ([SQLDB.Rows]). The kit module has no SQL database of its own; the real
// ones (SQLite, PostgreSQL) are tested where the services use them.
//
// Transactions are serialized, as SQLite's BEGIN IMMEDIATE does: Begin
// waits until no other transaction is open; a transaction works on a copy of
// the data that Commit publishes and Rollback drops. Safe for concurrent use.
type SQLDB struct {
	lock chan struct{} // a token held by the open transaction, or by one statement outside any

	// Guarded by holding lock.
	data sqlData
}

type sqlData struct {
	journal map[string]journalRow // by caller, method and request id, joined with NUL
	rows    map[string]int        // rows inserted by table, other than the journal
}

type journalRow struct {
	hash, resp []byte
	created    int64
}

func (d sqlData) clone() sqlData {
	return sqlData{journal: maps.Clone(d.journal), rows: maps.Clone(d.rows)}
}

// NewSQLDB returns an empty database and a *sql.DB on it, which the caller
// closes.
func NewSQLDB() (*SQLDB, *sql.DB) {
	d := &SQLDB{lock: make(chan struct{}, 1), data: sqlData{journal: map[string]journalRow{}, rows: map[string]int{}}}
	return d, sql.OpenDB(connector{d})
}

// Rows returns the number of committed rows of table: the journal's records
// for "grpckit_dedupe", else the rows inserted into table.
func (d *SQLDB) Rows(table string) int {
	d.lock <- struct{}{}
	defer func() { <-d.lock }()
	if table == "grpckit_dedupe" {
		return len(d.data.journal)
	}
	return d.data.rows[table]
}

type connector struct{ d *SQLDB }

func (c connector) Connect(context.Context) (driver.Conn, error) { return &sqlConn{d: c.d}, nil }
func (c connector) Driver() driver.Driver                        { return sqlDriver{} }

type sqlDriver struct{}

func (sqlDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("kittest: open the SQLDB with NewSQLDB")
}

// sqlConn is one connection; tx is its open transaction's data, if any.
type sqlConn struct {
	d  *SQLDB
	tx *sqlData
}

var (
	_ driver.ConnBeginTx       = (*sqlConn)(nil)
	_ driver.ExecerContext     = (*sqlConn)(nil)
	_ driver.QueryerContext    = (*sqlConn)(nil)
	_ driver.NamedValueChecker = (*sqlConn)(nil)
)

func (c *sqlConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("kittest: SQLDB does not prepare statements")
}
func (c *sqlConn) Close() error { return nil }
func (c *sqlConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *sqlConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *sqlConn) BeginTx(ctx context.Context, _ driver.TxOptions) (driver.Tx, error) {
	select {
	case c.d.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	data := c.d.data.clone()
	c.tx = &data
	return c, nil
}

func (c *sqlConn) Commit() error {
	c.d.data, c.tx = *c.tx, nil
	<-c.d.lock
	return nil
}

func (c *sqlConn) Rollback() error {
	c.tx = nil
	<-c.d.lock
	return nil
}

// run runs query on the transaction's data, or alone on the database's.
func (c *sqlConn) run(ctx context.Context, query string, args []driver.NamedValue) (int64, [][]driver.Value, error) {
	if c.tx != nil {
		return c.tx.exec(query, args)
	}
	select {
	case c.d.lock <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	defer func() { <-c.d.lock }()
	return c.d.data.exec(query, args)
}

func (c *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	n, _, err := c.run(ctx, query, args)
	return driver.RowsAffected(n), err
}

func (c *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	_, rows, err := c.run(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return &sqlRows{rows: rows}, nil
}

// exec runs one statement on d: it returns the rows affected and the rows
// selected.
func (d *sqlData) exec(query string, args []driver.NamedValue) (int64, [][]driver.Value, error) {
	v := func(i int) driver.Value { return args[i].Value }
	key := func(from int) string { return fmt.Sprintf("%s\x00%s\x00%s", v(from), v(from+1), v(from+2)) }
	switch {
	case strings.HasPrefix(query, "CREATE "):
		return 0, nil, nil
	case strings.HasPrefix(query, "INSERT INTO grpckit_dedupe "):
		k := key(0)
		if _, ok := d.journal[k]; ok {
			return 0, nil, nil // ON CONFLICT DO NOTHING
		}
		d.journal[k] = journalRow{hash: v(3).([]byte), created: v(4).(int64)}
		return 1, nil, nil
	case strings.HasPrefix(query, "SELECT request_hash, response IS NOT NULL, response FROM grpckit_dedupe "):
		r, ok := d.journal[key(0)]
		if !ok {
			return 0, nil, nil
		}
		var resp driver.Value
		if r.resp != nil {
			resp = r.resp
		}
		return 0, [][]driver.Value{{r.hash, r.resp != nil, resp}}, nil
	case strings.HasPrefix(query, "UPDATE grpckit_dedupe SET response = "):
		k := key(1)
		r, ok := d.journal[k]
		if !ok {
			return 0, nil, nil
		}
		r.resp = v(0).([]byte)
		d.journal[k] = r
		return 1, nil, nil
	case strings.HasPrefix(query, "DELETE FROM grpckit_dedupe WHERE create_time < "):
		var n int64
		for k, r := range d.journal {
			if r.created < v(0).(int64) {
				delete(d.journal, k)
				n++
			}
		}
		return n, nil, nil
	case strings.HasPrefix(query, "INSERT INTO "):
		table, _, _ := strings.Cut(strings.TrimPrefix(query, "INSERT INTO "), " ")
		d.rows[table]++
		return 1, nil, nil
	}
	return 0, nil, fmt.Errorf("kittest: SQLDB does not understand %q", query)
}

// sqlRows are the columns of a journal lookup.
type sqlRows struct{ rows [][]driver.Value }

func (r *sqlRows) Columns() []string { return []string{"request_hash", "recorded", "response"} }
func (r *sqlRows) Close() error      { return nil }

func (r *sqlRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}
