package user

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by [Store.Get], [Store.Update] and [Store.Delete]
// when no user has the given id.
var ErrNotFound = errors.New("user: not found")

// ErrEmailTaken is returned by [Store.Create] and [Store.Update] when another
// user already has the email.
var ErrEmailTaken = errors.New("user: email already taken")

// ErrUnavailable is wrapped in the errors of a store whose database could
// not do the operation for a passing reason — connection lost or refused,
// server shutting down or out of connections, a serialization failure or a
// deadlock — so that the call may be tried again. [Server] answers it with
// codes.Unavailable.
var ErrUnavailable = errors.New("user: store unavailable")

// User is a stored user.
type User struct {
	// ID is a UUIDv7 string assigned by the store; ids sort in creation order.
	ID string
	// Name is 1 to 200 bytes of UTF-8 without NUL, as [Server] checks.
	Name string
	// Email is a single address without surrounding white space; no two
	// users share one.
	Email string
	// CreateTime and UpdateTime are in UTC; a store may truncate them (the
	// SQL stores keep microseconds).
	CreateTime time.Time
	UpdateTime time.Time
}

// Patch lists the fields [Store.Update] changes; a nil field is left as it is.
type Patch struct {
	Name  *string
	Email *string
}

// Store keeps users. Implementations are safe for concurrent use. A method
// whose ctx is done fails, usually with an error wrapping ctx.Err() (a
// database driver may report a query it interrupted as its own error).
// Stores do not validate names or emails: [Server] does that before calling
// them. Errors other than [ErrNotFound], [ErrEmailTaken] and context errors
// are unexpected failures of the backing database.
type Store interface {
	// Create stores a new user with name and email, assigning its ID,
	// CreateTime and UpdateTime. It returns [ErrEmailTaken] when the email
	// is in use.
	Create(ctx context.Context, name, email string) (User, error)
	// Get returns the user with id, or [ErrNotFound].
	Get(ctx context.Context, id string) (User, error)
	// List returns at most pageSize users whose ID sorts after afterID,
	// ordered by ID (that is, by creation). An empty afterID starts at the
	// first user. A pageSize below 1 returns no users.
	List(ctx context.Context, pageSize int, afterID string) ([]User, error)
	// Update applies p to the user with id, sets its UpdateTime and returns
	// the result. It returns [ErrNotFound] for a missing user and
	// [ErrEmailTaken] when p.Email belongs to another user. An empty patch
	// returns the user unchanged.
	Update(ctx context.Context, id string, p Patch) (User, error)
	// Delete removes the user with id, or returns [ErrNotFound].
	Delete(ctx context.Context, id string) error
	// Close releases the store's resources. No method may be called after
	// or concurrently with Close.
	Close() error
}
