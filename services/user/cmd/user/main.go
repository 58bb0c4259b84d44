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
	"os"
	"time"

	"github.com/grpckit/grpckit/internal/svcmain"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

func main() {
	svc := svcmain.Start("user", DefaultConfig(), os.Args[1:])
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	store, err := openStore(ctx, svc.Config.Current().Value.User)
	cancel()
	if err != nil {
		svcmain.Fatal(svc.Logger, "open store", err)
	}
	defer store.Close()
	srv, err := svc.Server()
	if err != nil {
		svcmain.Fatal(svc.Logger, "server", err)
	}
	userv1.RegisterUserServiceServer(srv, user.NewServer(store, user.WithLogger(svc.Logger)))
	if err := srv.Run(context.Background()); err != nil {
		svcmain.Fatal(svc.Logger, "user stopped", err)
	}
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
