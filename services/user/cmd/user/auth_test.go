package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/service"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

const (
	secret   = "0123456789abcdef0123456789abcdef"
	issuer   = "https://idp.test"
	audience = "user"
)

// startUser runs the user service's own setup on loopback, without Consul,
// with auth from its environment (the secret, an issuer and an audience),
// and returns a client connection that sends no token by itself.
func startUser(t *testing.T, extraEnv ...string) userv1.UserServiceClient {
	t.Helper()
	env := map[string]string{
		"GRPCKIT_AUTH_HMAC_SECRET": secret,
		"GRPCKIT_AUTH_ISSUER":      issuer,
		"GRPCKIT_AUTH_AUDIENCE":    audience,
	}
	for i := 0; i+1 < len(extraEnv); i += 2 {
		env[extraEnv[i]] = extraEnv[i+1]
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, "user", DefaultConfig(), func(s *service.Service[Config]) error {
			if err := setup(s); err != nil {
				return err
			}
			go func() {
				for s.Server.Addr() == nil {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Millisecond):
					}
				}
				addr <- s.Server.Addr()
			}()
			return nil
		}, service.WithArgs([]string{"-registry.address", "off", "-server.admin", "", "-server.drain", "0s",
			"-log.level", "error", "-user.db", filepath.Join(t.TempDir(), "users.db")}),
			service.WithOutput(io.Discard),
			service.WithConfigOptions(config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("user service: %v", err)
		}
	})
	var a net.Addr
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("the user service did not start: %v", err)
	}
	cc, err := grpc.NewClient(a.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return userv1.NewUserServiceClient(cc)
}

// as returns a call option carrying a token for sub; opts come after the
// issuer and audience the service checks and override them.
func as(t *testing.T, sub string, opts ...auth.IssueOption) grpc.CallOption {
	t.Helper()
	tok, err := auth.IssueHS256(secret, sub, time.Hour, append([]auth.IssueOption{auth.WithIssuer(issuer), auth.WithAudience(audience)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return grpc.PerRPCCredentials(auth.BearerToken(tok, auth.AllowInsecure()))
}

// TestCallsStraightToTheService: the user service itself, not only the
// gateway, refuses anonymous, expired, wrong-audience, wrong-issuer and
// other-subject calls, and changes nothing for them.
func TestCallsStraightToTheService(t *testing.T) {
	users := startUser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	admin := as(t, "ops", auth.WithClaim(auth.AdminClaim, true))
	created, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Bob", Email: "bob@example.com"}, admin)
	if err != nil {
		t.Fatalf("CreateUser as an admin: %v", err)
	}
	bob := created.GetUser().GetId()
	rename := func(name string) *userv1.UpdateUserRequest {
		return &userv1.UpdateUserRequest{Id: bob, Name: &name}
	}
	for _, tc := range []struct {
		name string
		call func(opts ...grpc.CallOption) error
		opt  []grpc.CallOption
		want codes.Code
	}{
		{"anonymous create", func(o ...grpc.CallOption) error {
			_, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Eve", Email: "eve@example.com"}, o...)
			return err
		}, nil, codes.Unauthenticated},
		{"anonymous delete", func(o ...grpc.CallOption) error {
			_, err := users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: bob}, o...)
			return err
		}, nil, codes.Unauthenticated},
		{"anonymous list", func(o ...grpc.CallOption) error {
			_, err := users.ListUsers(ctx, &userv1.ListUsersRequest{}, o...)
			return err
		}, nil, codes.Unauthenticated},
		{"expired", func(o ...grpc.CallOption) error {
			_, err := users.UpdateUser(ctx, rename("Expired"), o...)
			return err
		}, []grpc.CallOption{as(t, bob, auth.WithIssuedAt(time.Now().Add(-2*time.Hour)))}, codes.Unauthenticated},
		{"wrong audience", func(o ...grpc.CallOption) error {
			_, err := users.UpdateUser(ctx, rename("Audience"), o...)
			return err
		}, []grpc.CallOption{as(t, bob, auth.WithAudience("greeter"))}, codes.Unauthenticated},
		{"wrong issuer", func(o ...grpc.CallOption) error {
			_, err := users.UpdateUser(ctx, rename("Issuer"), o...)
			return err
		}, []grpc.CallOption{as(t, bob, auth.WithIssuer("https://elsewhere.test"))}, codes.Unauthenticated},
		{"other subject renames", func(o ...grpc.CallOption) error {
			_, err := users.UpdateUser(ctx, rename("Mallory"), o...)
			return err
		}, []grpc.CallOption{as(t, "someone-else")}, codes.PermissionDenied},
		{"other subject deletes", func(o ...grpc.CallOption) error {
			_, err := users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: bob}, o...)
			return err
		}, []grpc.CallOption{as(t, "someone-else")}, codes.PermissionDenied},
		{"a service's own identity", func(o ...grpc.CallOption) error {
			_, err := users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: bob}, o...)
			return err
		}, []grpc.CallOption{as(t, auth.ServicePrefix+"greeter")}, codes.PermissionDenied},
	} {
		if err := tc.call(tc.opt...); status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	got, err := users.GetUser(ctx, &userv1.GetUserRequest{Id: bob}, admin)
	if err != nil || got.GetUser().GetName() != "Bob" {
		t.Fatalf("after the refused calls bob is %v (%v), want unchanged", got.GetUser(), err)
	}
	// The owner and an admin may.
	if _, err := users.UpdateUser(ctx, rename("Robert"), as(t, bob)); err != nil {
		t.Errorf("bob renames himself: %v", err)
	}
	if _, err := users.GetUser(ctx, &userv1.GetUserRequest{Id: bob}, as(t, "anyone")); err != nil {
		t.Errorf("GetUser with any valid token: %v", err)
	}
	if _, err := users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: bob}, admin); err != nil {
		t.Errorf("an admin deletes bob: %v", err)
	}
}

// TestPublicWriteStaysOwned: listing the write methods in
// auth.public_methods lets anonymous calls past the auth layer, but the
// service still refuses to change a user for a caller without a token.
func TestPublicWriteStaysOwned(t *testing.T) {
	users := startUser(t, "GRPCKIT_AUTH_PUBLIC_METHODS", "[/user.v1.UserService/UpdateUser, /user.v1.UserService/DeleteUser]")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	created, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Bob", Email: "bob@example.com"}, as(t, "ops", auth.WithClaim(auth.AdminClaim, true)))
	if err != nil {
		t.Fatal(err)
	}
	name := "Mallory"
	if _, err := users.UpdateUser(ctx, &userv1.UpdateUserRequest{Id: created.GetUser().GetId(), Name: &name}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("anonymous UpdateUser of a public method = %v, want PermissionDenied", err)
	}
	if _, err := users.DeleteUser(ctx, &userv1.DeleteUserRequest{Id: created.GetUser().GetId()}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("anonymous DeleteUser of a public method = %v, want PermissionDenied", err)
	}
}
