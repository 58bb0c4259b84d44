// Command user runs the user example service. It registers in Consul as
// "user" and keeps its data in a SQLite file that several instances on one
// host may share. Every setting comes from kit/config: defaults, -config
// FILE, GRPCKIT_* variables, flags and the Consul key grpckit/user
// (-h lists them, -print-config shows the result).
//
//	user -server.listen 127.0.0.1:0 -registry.address 127.0.0.1:8500 -user.db users.db
package main

import (
	"context"
	"os"

	"github.com/grpckit/grpckit/internal/svcmain"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

func main() {
	svc := svcmain.Start("user", DefaultConfig(), os.Args[1:])
	defer svc.Close()
	store, err := user.OpenSQLite(context.Background(), svc.Config.Current().Value.User.DB)
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
