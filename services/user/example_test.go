package user_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "user-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := user.OpenSQLite(ctx, filepath.Join(dir, "users.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	userv1.RegisterUserServiceServer(gs, user.NewServer(store))
	go gs.Serve(lis)
	defer gs.Stop()

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := userv1.NewUserServiceClient(conn)

	created, err := client.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada", Email: " ada@example.com "})
	if err != nil {
		log.Fatal(err)
	}
	got, err := client.GetUser(ctx, &userv1.GetUserRequest{Id: created.GetUser().GetId()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s <%s>\n", got.GetUser().GetName(), got.GetUser().GetEmail())

	_, err = client.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada again", Email: "ada@example.com"})
	fmt.Println(status.Code(err))
	// Output:
	// Ada <ada@example.com>
	// AlreadyExists
}
