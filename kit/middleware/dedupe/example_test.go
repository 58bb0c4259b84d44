package dedupe_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

// A server that deduplicates Create: a second call with the same request id
// gets the first one's response without running the handler, so the item
// is created once.
func ExampleCache_UnaryServerInterceptor() {
	cfg := dedupe.DefaultConfig()
	cfg.Methods = []string{"/testpb.v1.TestService/Create"}
	cache, err := dedupe.New(cfg)
	if err != nil {
		panic(err)
	}
	store := &kittest.Store{}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor()))
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{Store: store})
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	c := testpbv1.NewTestServiceClient(conn)

	// dedupe.UnaryClientInterceptor stamps ids itself; here the caller does.
	ctx := metadata.AppendToOutgoingContext(context.Background(), dedupe.RequestIDKey, "order-42")
	for range 2 {
		resp, err := c.Create(ctx, &testpbv1.CreateRequest{Key: "order-42", Value: "2 books"})
		fmt.Println(resp.GetItem().GetId(), err)
	}
	fmt.Println("writes:", store.Writes())
	// Output:
	// item-1 <nil>
	// item-1 <nil>
	// writes: 1
}

// items is a handler of Create that writes an item and records its response
// in one transaction, with a [dedupe.Journal].
type items struct {
	testpbv1.UnimplementedTestServiceServer
	db      *sql.DB
	journal *dedupe.Journal
}

func (s *items) Create(ctx context.Context, req *testpbv1.CreateRequest) (*testpbv1.CreateResponse, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "no database")
	}
	defer tx.Rollback() // a no-op after Commit
	call, deduped := dedupe.FromContext(ctx)
	if deduped {
		first := &testpbv1.CreateResponse{}
		claimed, err := s.journal.Claim(ctx, tx, call, first)
		if errors.Is(err, dedupe.ErrRequestIDReused) {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		} else if err != nil {
			return nil, status.Error(codes.Internal, "journal failed")
		}
		if !claimed {
			return first, nil // done before, here or on another instance
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO items (key, value) VALUES (?, ?)", req.GetKey(), req.GetValue()); err != nil {
		return nil, status.Error(codes.Internal, "insert failed")
	}
	resp := &testpbv1.CreateResponse{Item: &testpbv1.Item{Key: req.GetKey(), Value: req.GetValue(), Id: rand.Text()}}
	if deduped {
		if err := s.journal.Record(ctx, tx, call, resp); err != nil {
			return nil, status.Error(codes.Internal, "journal failed")
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, status.Error(codes.Unavailable, "commit failed")
	}
	return resp, nil
}

// Two instances of a service share a database: a Create whose response was
// lost on the first instance, retried on the second, gets the first
// response (the same item id) and writes nothing; the same request id with
// another request is refused. (kittest.NewSQLDB stands in for a SQLite or
// PostgreSQL database here.)
func ExampleJournal() {
	mem, db := kittest.NewSQLDB()
	defer db.Close()
	journal, err := dedupe.NewJournal(dedupe.SQLite)
	if err != nil {
		panic(err)
	}
	for _, stmt := range journal.Schema() {
		if _, err := db.Exec(stmt); err != nil {
			panic(err)
		}
	}
	var stops []func() // of the servers and connections
	instance := func() testpbv1.TestServiceClient {
		// Each instance has its own cache: it gives the handler the call's
		// dedupe.Request, and remembers nothing across instances.
		cache, err := dedupe.New(dedupe.DefaultConfig())
		if err != nil {
			panic(err)
		}
		lis := bufconn.Listen(1 << 20)
		srv := grpc.NewServer(grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor()))
		testpbv1.RegisterTestServiceServer(srv, &items{db: db, journal: journal})
		go srv.Serve(lis)
		conn, err := grpc.NewClient("passthrough:///test",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			panic(err)
		}
		stops = append(stops, func() { conn.Close(); srv.Stop() })
		return testpbv1.NewTestServiceClient(conn)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	a, b := instance(), instance()

	ctx := metadata.AppendToOutgoingContext(context.Background(), dedupe.RequestIDKey, "order-43")
	first, err := a.Create(ctx, &testpbv1.CreateRequest{Key: "order-43", Value: "2 books"})
	if err != nil {
		panic(err)
	}
	retry, err := b.Create(ctx, &testpbv1.CreateRequest{Key: "order-43", Value: "2 books"})
	fmt.Println("same item:", err == nil && retry.GetItem().GetId() == first.GetItem().GetId())
	_, err = b.Create(ctx, &testpbv1.CreateRequest{Key: "order-43", Value: "3 books"})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	fmt.Println("items:", mem.Rows("items"), "records:", mem.Rows(dedupe.JournalTable))
	// Output:
	// same item: true
	// InvalidArgument dedupe: request id reused with a different request
	// items: 1 records: 1
}
