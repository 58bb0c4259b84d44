package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
	"github.com/grpckit/grpckit/services/user"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	secret      = "0123456789abcdef0123456789abcdef" // 32 bytes
	otherSecret = "fedcba9876543210fedcba9876543210"
)

// serveGRPC serves register's services over bufconn and returns a client
// connection; both stop on cleanup. Like every kit service, the server
// checks the tokens of the test secret, and the connection's calls carry
// the token of the incoming call they are made for, else the identity of
// the service from (as kit/service's clients do).
func serveGRPC(t testing.TB, from string, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	a, err := auth.New(auth.Config{HMACSecret: secret, PublicMethods: publicMethods})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dedupe.New(dedupe.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// auth, then dedupe (which hands the handler the call's request id), as
	// in kit's server chain.
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(a.UnaryServerInterceptor(), d.UnaryServerInterceptor()),
		grpc.StreamInterceptor(a.StreamServerInterceptor()))
	register(gs)
	return dialBufconn(t, serveBufconn(t, gs),
		grpc.WithPerRPCCredentials(auth.Forward(auth.ServiceToken(func() auth.Config { return auth.Config{HMACSecret: secret} }, from))))
}

// publicMethods are the methods the test backends serve without a token,
// as greeter's default configuration declares.
var publicMethods = []string{greeterv1.GreeterService_SayHello_FullMethodName}

// backends starts the real user service on a SQLite file in t.TempDir and
// the real greeter service calling it, and returns their APIs as the
// gateway learns them: their services, public methods and connections.
func backends(t testing.TB) (greeterAPI, userAPI API) {
	t.Helper()
	store, err := user.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	userConn := serveGRPC(t, "greeter", func(s *grpc.Server) {
		userv1.RegisterUserServiceServer(s, user.NewServer(store))
	})
	greeterConn := serveGRPC(t, "gateway", func(s *grpc.Server) {
		greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(userv1.NewUserServiceClient(userConn), greeter.WithInstance("greeter-1")))
	})
	return API{Name: "greeter", Services: services(greeterv1.File_greeter_v1_greeter_proto), Public: publicMethods, Conn: greeterConn},
		API{Name: "user", Services: services(userv1.File_user_v1_user_proto), Conn: userConn}
}

// services returns the services of a proto file.
func services(f protoreflect.FileDescriptor) []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	for i := range f.Services().Len() {
		out = append(out, f.Services().Get(i))
	}
	return out
}

// testConfig is the default configuration with the test secret and no rate
// limits.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Auth.HMACSecret = secret
	cfg.Limits.Global.RPS = 0
	cfg.Limits.PerClient.RPS = 0
	return cfg
}

// newGateway returns a gateway with cfg on the real backends.
func newGateway(t testing.TB, cfg Config, opts ...Option) *Gateway {
	t.Helper()
	g, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	gapi, uapi := backends(t)
	for _, api := range []API{gapi, uapi} {
		if err := g.SetAPI(api); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// token returns a valid token of the test secret, an admin's (it may change
// every user, as the dev token of the local stack).
func token(t testing.TB) string {
	t.Helper()
	tok, err := auth.IssueHS256(secret, "tester", time.Hour, auth.WithClaim(auth.AdminClaim, true))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// request describes one HTTP request of a test.
type request struct {
	method, target, body string
	token                string // sent as a bearer token when set
	header               http.Header
	remote               string // RemoteAddr; default 192.0.2.1:1234
}

// answer is a recorded answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do serves req on h.
func do(t testing.TB, h http.Handler, req request) answer {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, req.target, body)
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.header {
		r.Header[k] = v
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.remote != "" {
		r.RemoteAddr = req.remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// jsonError is the decoded error shape.
type jsonError struct {
	Error struct {
		Code    string           `json:"code"`
		Status  int              `json:"status"`
		Message string           `json:"message"`
		Details []map[string]any `json:"details"`
	} `json:"error"`
}

// decodeError decodes a's body as the error shape and checks that it
// repeats the HTTP status and is served as JSON.
func (a answer) decodeError(t testing.TB) jsonError {
	t.Helper()
	var e jsonError
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	if e.Error.Status != a.status {
		t.Errorf("error.status %d, HTTP status %d", e.Error.Status, a.status)
	}
	if e.Error.Details == nil {
		t.Errorf("error.details is null or missing in %s", a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return e
}

// decode decodes a's body into a map.
func (a answer) decode(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return m
}

// detailTypes returns the @type of each detail of e.
func (e jsonError) detailTypes() []string {
	var types []string
	for _, d := range e.Error.Details {
		s, _ := d["@type"].(string)
		types = append(types, s)
	}
	return types
}

// clock is a manual clock for the rate limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
