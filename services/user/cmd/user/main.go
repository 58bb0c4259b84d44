// Command user runs the user example service. It registers in Consul as
// "user" and keeps its data in a SQLite file that several instances on one
// host may share (user.db) or, when user.postgres_dsn is set, in a
// PostgreSQL database that any number of instances may share. Every setting
// comes from kit/config: defaults, -config FILE, GRPCKIT_* variables, flags
// and the Consul key grpckit/user (-h lists them, -print-config shows the
// result, with the DSN masked).
//
//	user -server.listen 127.0.0.1:0 -registry.address 127.0.0.1:8500 -user.db users.db
//	GRPCKIT_USER_POSTGRES_DSN=postgres://user:secret@127.0.0.1:5432/users?sslmode=disable user ...
package main

import (
	"context"
	"time"

	"github.com/grpckit/grpckit/kit/service"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

func main() { service.Main("user", DefaultConfig(), setup) }

// setup opens the store and registers the user service on s.
func setup(s *service.Service[Config]) error {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	store, err := openStore(ctx, s.Value().User)
	if err != nil {
		return err
	}
	s.OnStop(func(context.Context) error { return store.Close() })
	opts := []user.Option{user.WithLogger(s.Logger)}
	if !s.Value().Auth.Disabled {
		opts = append(opts, user.RequireIdentity())
	}
	userv1.RegisterUserServiceServer(s.Server, user.NewServer(store, opts...))
	return nil
}

// openTimeout bounds opening the store: connecting to PostgreSQL, or waiting
// for another process that sets the SQLite file up, and creating the schema.
const openTimeout = 30 * time.Second

// openStore opens the store that cfg names: PostgreSQL when it has a DSN,
// else the SQLite file.
func openStore(ctx context.Context, cfg Section) (*user.SQLStore, error) {
	if cfg.PostgresDSN != "" {
		return user.OpenPostgres(ctx, cfg.PostgresDSN)
	}
	return user.OpenSQLite(ctx, cfg.DB)
}
