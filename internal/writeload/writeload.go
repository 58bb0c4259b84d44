// Package writeload is the write workload of the fault tests
// (internal/cmd/chaos, internal/e2e): writers that create users and rename
// them through a user client whose dedupe layer stamps CreateUser and
// UpdateUser (so a retry carries the first attempt's request id), and the
// check of what the writers saw accepted against what the store holds
// afterwards: no accepted write lost, none done twice.
package writeload

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

// Methods are the methods a writer's client must stamp with request ids
// (kit.WithDedupedMethods).
var Methods = []string{userv1.UserService_CreateUser_FullMethodName, userv1.UserService_UpdateUser_FullMethodName}

// updatesPerUser is how many times a writer renames each user it created.
const updatesPerUser = 2

// Load is a running write workload. Its methods are safe for concurrent use.
type Load struct {
	client   userv1.UserServiceClient
	prefix   string
	deadline time.Duration
	limiter  *rate.Limiter

	stopped atomic.Bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	creates map[string]*created // guarded by mu; by email, every create whose outcome is known or unknown
	updates int                 // guarded by mu; accepted updates
	failed  int                 // guarded by mu; calls that failed: outcome unknown
	dups    []string            // guarded by mu; the writers' own creates answered ALREADY_EXISTS
	errs    map[string]int      // guarded by mu; failures by code and message
}

// created is one CreateUser of the workload and the updates of its user.
type created struct {
	accepted bool   // the call succeeded
	id       string // the id it answered
	// Names of the user: the accepted name (of the create or the last
	// accepted update), then the names of later updates that failed (they
	// may have been done).
	name    string
	unknown []string
}

// Start starts writers goroutines writing, together, at most perSecond
// calls a second, each with deadline. Every user they create has an email
// that starts with prefix, which must be unique to the run (a time stamp).
// Stop stops them.
func Start(ctx context.Context, client userv1.UserServiceClient, prefix string, writers int, perSecond float64, deadline time.Duration) *Load {
	l := &Load{
		client: client, prefix: prefix, deadline: deadline,
		limiter: rate.NewLimiter(rate.Limit(perSecond), 1),
		creates: map[string]*created{}, errs: map[string]int{},
	}
	for w := range writers {
		l.wg.Go(func() { l.writer(ctx, w) })
	}
	return l
}

// Accepted returns the number of calls accepted so far.
func (l *Load) Accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.updates
	for _, c := range l.creates {
		if c.accepted {
			n++
		}
	}
	return n
}

// Stop stops the writers and waits for their calls in flight.
func (l *Load) Stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

func (l *Load) writer(ctx context.Context, w int) {
	for seq := 0; ; seq++ {
		email := fmt.Sprintf("%s-%d-%d@example.com", l.prefix, w, seq)
		name := fmt.Sprintf("writer %d user %d", w, seq)
		if !l.wait(ctx) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, l.deadline)
		resp, err := l.client.CreateUser(cctx, &userv1.CreateUserRequest{Name: name, Email: email})
		cancel()
		if err != nil && ctx.Err() != nil {
			return
		}
		c := &created{name: name}
		l.mu.Lock()
		l.creates[email] = c
		switch {
		case err == nil:
			c.accepted, c.id = true, resp.GetUser().GetId()
		case status.Code(err) == codes.AlreadyExists:
			l.dups = append(l.dups, email) // no one else uses the email: a create of ours ran twice
		default:
			l.failLocked(err)
		}
		l.mu.Unlock()
		if err != nil {
			continue
		}
		for v := 1; v <= updatesPerUser; v++ {
			if !l.wait(ctx) {
				return
			}
			newName := fmt.Sprintf("%s v%d", name, v)
			cctx, cancel := context.WithTimeout(ctx, l.deadline)
			_, err := l.client.UpdateUser(cctx, &userv1.UpdateUserRequest{Id: c.id, Name: &newName})
			cancel()
			if err != nil && ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			if err == nil {
				c.name, c.unknown = newName, nil
				l.updates++
			} else {
				c.unknown = append(c.unknown, newName)
				l.failLocked(err)
			}
			l.mu.Unlock()
		}
	}
}

// wait waits for the rate limiter and reports whether to go on.
func (l *Load) wait(ctx context.Context) bool {
	return !l.stopped.Load() && l.limiter.Wait(ctx) == nil && !l.stopped.Load()
}

func (l *Load) failLocked(err error) {
	l.failed++
	st := status.Convert(err)
	msg := st.Message()
	if len(msg) > 80 {
		msg = msg[:80] + "..."
	}
	l.errs[st.Code().String()+": "+msg]++
}

// Report is what a check found.
type Report struct {
	// Accepted counts the calls that succeeded: creates and updates.
	Accepted int
	// Failed counts the calls that failed (their outcome is unknown; they
	// are not held against the store).
	Failed int
	// Lost counts accepted writes the store does not show: a created user
	// missing or with another id, or a user whose name is neither its last
	// accepted one nor that of a later update that failed.
	Lost int
	// Duplicated counts writes done twice: a create of the workload answered
	// ALREADY_EXISTS (its email is used by no one else), or a user stored
	// more than once.
	Duplicated int
	// Problems describes the first lost and duplicated writes, and the kinds
	// of failed calls.
	Problems []string
}

// Check compares what the writers saw, after Stop, with users: every user
// in the store (all pages of [user.Store.List]).
func (l *Load) Check(users []user.User) Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r Report
	problem := func(format string, args ...any) {
		if len(r.Problems) < 10 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	byEmail := map[string][]user.User{}
	for _, u := range users {
		if strings.HasPrefix(u.Email, l.prefix+"-") {
			byEmail[u.Email] = append(byEmail[u.Email], u)
		}
	}
	for email, us := range byEmail {
		if len(us) > 1 {
			r.Duplicated += len(us) - 1
			problem("%d users with email %s", len(us), email)
		}
	}
	for _, email := range l.dups {
		r.Duplicated++
		problem("CreateUser(%s) answered ALREADY_EXISTS: it ran twice", email)
	}
	for email, c := range l.creates {
		if !c.accepted {
			continue
		}
		r.Accepted++
		us := byEmail[email]
		if len(us) == 0 || us[0].ID != c.id {
			r.Lost++
			problem("accepted user %s (%s) is not stored", c.id, email)
			continue
		}
		if got := us[0].Name; got != c.name && !slices.Contains(c.unknown, got) {
			r.Lost++
			problem("user %s is named %q, want its last accepted name %q", c.id, got, c.name)
		}
	}
	r.Failed = l.failed
	r.Accepted += l.updates
	for kind, n := range l.errs {
		problem("%d failed calls: %s", n, kind)
	}
	return r
}

// ReadUsers returns every user of store, page by page.
func ReadUsers(ctx context.Context, store user.Store) ([]user.User, error) {
	var all []user.User
	after := ""
	for {
		page, err := store.List(ctx, 1000, after)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// Secret is the HS256 secret the fault tests give their processes
// (GRPCKIT_AUTH_HMAC_SECRET) and sign the writers' tokens with.
const Secret = "grpckit-fault-tests-hmac-secret-0123456789"

// Token returns a bearer token for the writers: subject chaos-writer, with
// the admin claim, so that they may update any user.
func Token() (string, error) {
	return auth.IssueHS256(Secret, "chaos-writer", 24*time.Hour, auth.WithClaim("admin", true))
}
