package user

import (
	"context"
	"errors"
	"log/slog"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// Server implements [userv1.UserServiceServer] on a [Store]. It validates
// requests (InvalidArgument with a google.rpc.BadRequest detail naming the
// fields), maps [ErrNotFound] to NotFound, [ErrEmailTaken] to
// AlreadyExists and [dedupe.ErrRequestIDReused] to InvalidArgument, reports
// context errors as Canceled or DeadlineExceeded, and logs any other store
// error, returning Internal without its text. It is safe for concurrent use.
// Its writes are exactly-once for deduplicated calls when the store
// journals them, as [SQLStore] does.
type Server struct {
	userv1.UnimplementedUserServiceServer
	store           Store
	logger          *slog.Logger
	requireIdentity bool // see RequireIdentity
}

var _ userv1.UserServiceServer = (*Server)(nil)

// NewServer returns a server on store. The caller keeps ownership of store
// and closes it after the server has stopped.
func NewServer(store Store, opts ...Option) *Server {
	o := defaultOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Server{store: store, logger: o.logger, requireIdentity: o.requireIdentity}
}

// CreateUser implements [userv1.UserServiceServer.CreateUser]. The email is
// stored without surrounding white space.
func (s *Server) CreateUser(ctx context.Context, req *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
	var v violations
	v.checkName("name", req.GetName())
	email := v.checkEmail("email", req.GetEmail())
	if err := v.err(); err != nil {
		return nil, err
	}
	u, err := s.store.Create(ctx, req.GetName(), email)
	if err != nil {
		return nil, s.storeError(ctx, "CreateUser", "", err)
	}
	// Through the gateway: 201 Created, with the new user's route.
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-http-code", "201", "location", "/v1/users/"+url.PathEscape(u.ID)))
	return &userv1.CreateUserResponse{User: toProto(u)}, nil
}

// GetUser implements [userv1.UserServiceServer.GetUser].
func (s *Server) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	u, err := s.store.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.storeError(ctx, "GetUser", req.GetId(), err)
	}
	return &userv1.GetUserResponse{User: toProto(u)}, nil
}

// ListUsers implements [userv1.UserServiceServer.ListUsers]: users in
// creation order, page_size (0 means 50, at most 1000) at a time.
// next_page_token is opaque and empty on the last page.
func (s *Server) ListUsers(ctx context.Context, req *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
	var v violations
	size := int(req.GetPageSize())
	if size < 0 {
		v.add("page_size", "must not be negative")
	}
	var after string
	if tok := req.GetPageToken(); tok != "" {
		var err error
		if after, err = decodePageToken(tok); err != nil {
			v.add("page_token", "is not a next_page_token returned by ListUsers")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	switch {
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	users, err := s.store.List(ctx, size+1, after) // one more tells whether a next page exists
	if err != nil {
		return nil, s.storeError(ctx, "ListUsers", "", err)
	}
	resp := &userv1.ListUsersResponse{}
	if len(users) > size {
		users = users[:size]
		resp.NextPageToken = encodePageToken(users[size-1].ID)
	}
	resp.Users = make([]*userv1.User, len(users))
	for i, u := range users {
		resp.Users[i] = toProto(u)
	}
	return resp, nil
}

// UpdateUser implements [userv1.UserServiceServer.UpdateUser]. At least one
// of name and email must be set.
func (s *Server) UpdateUser(ctx context.Context, req *userv1.UpdateUserRequest) (*userv1.UpdateUserResponse, error) {
	var v violations
	if req.GetId() == "" {
		v.add("id", "is required")
	}
	var p Patch
	if req.Name == nil && req.Email == nil {
		v.add("name", "at least one of name and email must be set")
		v.add("email", "at least one of name and email must be set")
	}
	if req.Name != nil {
		v.checkName("name", req.GetName())
		p.Name = req.Name
	}
	if req.Email != nil {
		email := v.checkEmail("email", req.GetEmail())
		p.Email = &email
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := s.mayChange(ctx, req.GetId()); err != nil {
		return nil, err
	}
	u, err := s.store.Update(ctx, req.GetId(), p)
	if err != nil {
		return nil, s.storeError(ctx, "UpdateUser", req.GetId(), err)
	}
	return &userv1.UpdateUserResponse{User: toProto(u)}, nil
}

// DeleteUser implements [userv1.UserServiceServer.DeleteUser].
func (s *Server) DeleteUser(ctx context.Context, req *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.mayChange(ctx, req.GetId()); err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, req.GetId()); err != nil {
		return nil, s.storeError(ctx, "DeleteUser", req.GetId(), err)
	}
	return &userv1.DeleteUserResponse{}, nil
}

// mayChange returns PermissionDenied unless the call may change user id: a
// user may change only itself (the token's subject is its id), an admin
// (a token with the claim admin: true) anyone. A call that no token
// authenticated is refused under [RequireIdentity], else let through (a
// server without auth trusts its callers).
func (s *Server) mayChange(ctx context.Context, id string) error {
	sub, ok := auth.Subject(ctx)
	switch {
	case !ok && s.requireIdentity:
		return status.Errorf(codes.PermissionDenied, "user: only that user or an admin may change user %q, and the call has no token", id)
	case !ok || auth.MayActFor(ctx, id):
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "user: %q may not change user %q: only that user or an admin may", sub, id)
}

// checkID returns InvalidArgument for an empty id.
func checkID(id string) error {
	var v violations
	if id == "" {
		v.add("id", "is required")
	}
	return v.err()
}

// storeError converts an error of the store to a status; id names the user
// the call was about, if any.
func (s *Server) storeError(ctx context.Context, method, id string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return status.Errorf(codes.NotFound, "user %q not found", id)
	case errors.Is(err, ErrEmailTaken):
		return status.Error(codes.AlreadyExists, "email is already taken")
	case errors.Is(err, dedupe.ErrRequestIDReused):
		return status.Error(codes.InvalidArgument, dedupe.ErrRequestIDReused.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case ctx.Err() != nil:
		// The driver may report an interrupted query as its own error.
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, ErrUnavailable):
		s.logger.LogAttrs(ctx, slog.LevelWarn, "user store unavailable",
			slog.String("method", method), slog.String("user_id", id), slog.Any("error", err))
		return status.Error(codes.Unavailable, "user store unavailable")
	}
	s.logger.LogAttrs(ctx, slog.LevelError, "user store failed",
		slog.String("method", method), slog.String("user_id", id), slog.Any("error", err))
	return status.Error(codes.Internal, "internal error")
}

func toProto(u User) *userv1.User {
	return &userv1.User{
		Id:         u.ID,
		Name:       u.Name,
		Email:      u.Email,
		CreateTime: timestamppb.New(u.CreateTime),
		UpdateTime: timestamppb.New(u.UpdateTime),
	}
}
