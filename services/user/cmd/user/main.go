// Command user runs the user example service. It registers in Consul as
// "user" and keeps its data in a SQLite file that several instances on one
// host may share.
//
//	user -listen 127.0.0.1:0 -consul 127.0.0.1:8500 -db users.db
package main

import (
	"context"
	"flag"
	"os"

	"github.com/grpckit/grpckit/internal/svcmain"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

func main() {
	fs := flag.NewFlagSet("user", flag.ExitOnError)
	flags := svcmain.Register(fs)
	dbPath := fs.String("db", svcmain.Env("GRPCKIT_USER_DB", "users.db"), "SQLite database file (env GRPCKIT_USER_DB)")
	fs.Parse(os.Args[1:])
	flags.RunProbe()

	logger, err := flags.Logger("user")
	if err != nil {
		svcmain.Fatal(logger, "bad flags", err)
	}
	store, err := user.OpenSQLite(context.Background(), *dbPath)
	if err != nil {
		svcmain.Fatal(logger, "open store", err)
	}
	defer store.Close()
	reg, err := flags.Registry(logger)
	if err != nil {
		svcmain.Fatal(logger, "consul registry", err)
	}
	srv, err := flags.Server("user", reg, logger)
	if err != nil {
		svcmain.Fatal(logger, "server", err)
	}
	userv1.RegisterUserServiceServer(srv, user.NewServer(store, user.WithLogger(logger)))
	if err := srv.Run(context.Background()); err != nil {
		svcmain.Fatal(logger, "user stopped", err)
	}
}
