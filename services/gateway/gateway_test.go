package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

func TestUnknownRouteAndMethod(t *testing.T) {
	g := newGateway(t, testConfig())
	for _, tc := range []struct {
		method, target string
		status         int
		code, allow    string
	}{
		{http.MethodGet, "/nope", 404, "NOT_FOUND", ""},
		{http.MethodGet, "/", 404, "NOT_FOUND", ""},
		{http.MethodGet, "/v1/users/", 404, "NOT_FOUND", ""},
		{http.MethodGet, "/v1/hello/a/b", 404, "NOT_FOUND", ""},
		{http.MethodPost, "/v2/users", 404, "NOT_FOUND", ""},
		{http.MethodPut, "/v1/users/1", 405, "UNIMPLEMENTED", "DELETE, GET, HEAD, PATCH"},
		{http.MethodPost, "/v1/users/1", 405, "UNIMPLEMENTED", "DELETE, GET, HEAD, PATCH"},
		{http.MethodDelete, "/v1/users", 405, "UNIMPLEMENTED", "GET, HEAD, POST"},
		{http.MethodPost, "/v1/hello/x", 405, "UNIMPLEMENTED", "GET, HEAD"},
		{http.MethodOptions, "/openapi.json", 405, "UNIMPLEMENTED", "GET, HEAD"},
	} {
		a := do(t, g, request{method: tc.method, target: tc.target})
		e := a.decodeError(t)
		if a.status != tc.status || e.Error.Code != tc.code || a.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: got %d %s Allow %q, want %d %s Allow %q", tc.method, tc.target,
				a.status, e.Error.Code, a.header.Get("Allow"), tc.status, tc.code, tc.allow)
		}
	}
}

func TestBadRequests(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 100
	g := newGateway(t, cfg)
	tok := token(t)
	long := `{"name": "` + strings.Repeat("x", 100) + `", "email": "a@example.com"}`
	for _, tc := range []struct {
		name   string
		req    request
		status int
		field  string // of the BadRequest detail, if any
	}{
		{"syntax", request{method: http.MethodPost, target: "/v1/users", body: `{"name": `}, 400, "body"},
		{"not an object", request{method: http.MethodPost, target: "/v1/users", body: `[1, 2]`}, 400, "body"},
		{"unknown field", request{method: http.MethodPost, target: "/v1/users", body: `{"name": "a", "email": "a@example.com", "admin": true}`}, 400, "body"},
		{"id in create", request{method: http.MethodPost, target: "/v1/users", body: `{"id": "x", "name": "a", "email": "a@example.com"}`}, 400, "body"},
		{"wrong type", request{method: http.MethodPost, target: "/v1/users", body: `{"name": 5, "email": "a@example.com"}`}, 400, "body"},
		{"empty body", request{method: http.MethodPost, target: "/v1/users", header: http.Header{"Content-Type": {"application/json"}}}, 400, "body"},
		{"trailing data", request{method: http.MethodPatch, target: "/v1/users/x", body: `{"name": "a"} {}`}, 400, "body"},
		{"other id", request{method: http.MethodPatch, target: "/v1/users/x", body: `{"id": "y", "name": "a"}`}, 400, "id"},
		{"too large", request{method: http.MethodPost, target: "/v1/users", body: long}, 413, ""},
		{"too large, patch", request{method: http.MethodPatch, target: "/v1/users/x", body: long}, 413, ""},
		{"text/plain", request{method: http.MethodPost, target: "/v1/users", body: `{}`, header: http.Header{"Content-Type": {"text/plain"}}}, 415, ""},
		{"form", request{method: http.MethodPost, target: "/v1/users", body: `name=a`, header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}, 415, ""},
		{"no content type", request{method: http.MethodPost, target: "/v1/users", body: `{}`, header: http.Header{"Content-Type": nil}}, 415, ""},
		{"unknown query parameter", request{method: http.MethodGet, target: "/v1/users?limit=5"}, 400, "limit"},
		{"query on a write", request{method: http.MethodPost, target: "/v1/users?x=1", body: `{}`}, 400, "x"},
		{"query on get", request{method: http.MethodGet, target: "/v1/users/x?fields=name"}, 400, "fields"},
		{"repeated parameter", request{method: http.MethodGet, target: "/v1/users?page_size=1&page_size=2"}, 400, "page_size"},
		{"page_size not a number", request{method: http.MethodGet, target: "/v1/users?page_size=ten"}, 400, "page_size"},
		{"page_size too large for int32", request{method: http.MethodGet, target: "/v1/users?page_size=3000000000"}, 400, "page_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.token = tok
			a := do(t, g, tc.req)
			e := a.decodeError(t)
			if a.status != tc.status || e.Error.Code != "INVALID_ARGUMENT" {
				t.Fatalf("got %d %s, want %d INVALID_ARGUMENT: %s", a.status, e.Error.Code, tc.status, a.body)
			}
			var want []string
			if tc.field != "" {
				want = []string{tc.field}
			}
			if diff := cmp.Diff(want, badRequestFields(e)); diff != "" {
				t.Errorf("BadRequest fields (-want +got):\n%s", diff)
			}
		})
	}
	// Content-Type parameters are fine.
	a := do(t, g, request{method: http.MethodPost, target: "/v1/users", token: tok, body: `{"name": "a", "email": "a@example.com"}`,
		header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}})
	if a.status != http.StatusCreated {
		t.Errorf("charset parameter: %d %s", a.status, a.body)
	}
}

// TestOversizedStream: a body of unknown length (chunked) beyond the limit
// is refused with 413 over a real connection.
func TestOversizedStream(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 10
	g := newGateway(t, cfg)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"name": "`))
		pw.Write([]byte(strings.Repeat("x", 4<<10)))
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/users", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token(t))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header, body: body}
	if e := a.decodeError(t); a.status != http.StatusRequestEntityTooLarge || !strings.Contains(e.Error.Message, "1024 bytes") {
		t.Errorf("got %d: %s", a.status, body)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"short secret", func(c *Config) { c.Auth.HMACSecret = "short" }, "auth: hmac_secret"},
		{"leeway", func(c *Config) { c.Auth.Leeway = duration.Duration(time.Hour) }, "auth: leeway"},
		{"global rps", func(c *Config) { c.Limits.Global.RPS = -1 }, "gateway.limits.global: ratelimit: rps"},
		{"per-client burst", func(c *Config) { c.Limits.PerClient.Burst = -1 }, "gateway.limits.per_client: ratelimit: burst"},
		{"max clients", func(c *Config) { c.Limits.MaxClients = 0 }, "gateway.limits.max_clients"},
		{"backend timeout", func(c *Config) { c.BackendTimeout = 0 }, "gateway.backend_timeout"},
		{"max body", func(c *Config) { c.MaxBodyBytes = 0 }, "gateway.max_body_bytes"},
		{"route pattern", func(c *Config) { c.Routes = map[string]RoutePolicy{"user.v1.UserService": {}} }, "gateway.routes"},
		{"route access", func(c *Config) { c.Routes = map[string]RoutePolicy{"/a.B/*": {Access: "public"}} }, "gateway.routes./a.B/*.access"},
		{"route limit", func(c *Config) { c.Routes = map[string]RoutePolicy{"/a.B/C": {Limit: ratelimit.Limit{RPS: -1}}} }, "gateway.routes./a.B/C.limit"},
		{"route timeout", func(c *Config) { c.Routes = map[string]RoutePolicy{"/a.B/C": {Timeout: -1}} }, "gateway.routes./a.B/C.timeout"},
		{"cors origin", func(c *Config) { c.CORS.AllowedOrigins = []string{"example.com"} }, "gateway.cors.allowed_origins"},
		{"cors header", func(c *Config) { c.CORS.AllowedHeaders = []string{"X Bad"} }, "gateway.cors.allowed_headers"},
		{"cors max age", func(c *Config) { c.CORS.MaxAge = -1 }, "gateway.cors.max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
			if _, err := New(cfg); err == nil {
				t.Error("New accepted the config")
			}
			g, err := New(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if err := g.SetConfig(cfg); err == nil {
				t.Error("SetConfig accepted the config")
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Auth.PublicKeyFiles = []string{"/nonexistent/key.pem"}
	cfg.Auth.Issuer, cfg.Auth.Audience = "https://idp.example", "gateway"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "/nonexistent/key.pem") {
		t.Errorf("New with a missing key file: %v", err)
	}
	g, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetAPI(API{Name: "x"}); err == nil {
		t.Error("SetAPI accepted an API without a connection")
	}
}

// TestTelemetry: requests are counted on the telemetry's /metrics by route
// and status, and refusals by scope.
func TestTelemetry(t *testing.T) {
	tcfg := telemetry.DefaultConfig()
	tcfg.ServiceName = "gateway-test"
	tel, err := telemetry.New(context.Background(), tcfg, telemetry.WithEnv(func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	cfg := testConfig()
	cfg.Limits.PerClient = ratelimit.Limit{RPS: 1, Burst: 1}
	g := newGateway(t, cfg, WithTelemetry(tel), withClock(newClock().Now))
	do(t, g, request{method: http.MethodGet, target: "/v1/hello/x", header: http.Header{
		"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}})
	do(t, g, request{method: http.MethodGet, target: "/v1/hello/x"})
	do(t, g, request{method: http.MethodGet, target: "/nope", remote: "192.0.2.9:1"})

	w := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var lines []string
	for l := range strings.SplitSeq(w.Body.String(), "\n") {
		if strings.HasPrefix(l, "grpckit_gateway_requests_total{") || strings.HasPrefix(l, "grpckit_gateway_rate_limited_total{") {
			lines = append(lines, stripScope(l))
		}
	}
	want := []string{
		`grpckit_gateway_rate_limited_total{scope="client"} 1`,
		`grpckit_gateway_requests_total{http_request_method="GET",http_response_status_code="200",http_route="/v1/hello/{name}"} 1`,
		`grpckit_gateway_requests_total{http_request_method="GET",http_response_status_code="404",http_route="unmatched"} 1`,
		`grpckit_gateway_requests_total{http_request_method="GET",http_response_status_code="429",http_route="/v1/hello/{name}"} 1`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("metrics (-want +got):\n%s\nall:\n%s", diff, w.Body.String())
	}
	if !strings.Contains(w.Body.String(), "grpckit_gateway_request_duration_seconds_bucket{") {
		t.Error("no grpckit_gateway_request_duration_seconds histogram")
	}
}

// stripScope removes the otel_scope_* labels of a Prometheus series.
func stripScope(line string) string {
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	var keep []string
	for l := range strings.SplitSeq(line[open+1:end], ",") {
		if !strings.HasPrefix(l, "otel_scope_") {
			keep = append(keep, l)
		}
	}
	return line[:open+1] + strings.Join(keep, ",") + line[end:]
}

// TestTracing: each request is a server span named after its route that
// continues the trace context of the request's headers.
func TestTracing(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tcfg := telemetry.DefaultConfig()
	tcfg.ServiceName = "gateway-test"
	tcfg.Metrics = false
	tel, err := telemetry.New(context.Background(), tcfg, telemetry.WithSyncSpanExporter(spans))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	g := newGateway(t, testConfig(), WithTelemetry(tel))
	a := do(t, g, request{method: http.MethodGet, target: "/v1/users/nobody", token: token(t), header: http.Header{
		"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}})
	if a.status != http.StatusNotFound {
		t.Fatalf("%d %s", a.status, a.body)
	}
	got := spans.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans, want 1", len(got))
	}
	s := got[0]
	if s.Name != "GET /v1/users/{id}" || s.SpanKind != trace.SpanKindServer ||
		s.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || s.Parent.SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("span %q kind %v trace %s parent %s", s.Name, s.SpanKind, s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range s.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{"http.request.method": "GET", "url.path": "/v1/users/nobody", "http.route": "/v1/users/{id}", "http.response.status_code": "404"}
	if diff := cmp.Diff(want, attrs); diff != "" {
		t.Errorf("span attributes (-want +got):\n%s", diff)
	}
}

// recordHandler is a slog.Handler that sends every record on records.
type recordHandler struct{ records chan slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.records <- r.Clone()
	return nil
}

func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h recordHandler) WithGroup(string) slog.Handler { return h }

func TestAccessLog(t *testing.T) {
	records := make(chan slog.Record, 10)
	g := newGateway(t, testConfig(), WithLogger(slog.New(recordHandler{records})))
	for _, tc := range []struct {
		req     request
		level   slog.Level
		route   string
		status  int64
		subject string
	}{
		{request{method: http.MethodGet, target: "/v1/hello/x"}, slog.LevelDebug, "/v1/hello/{name}", 200, ""},
		{request{method: http.MethodPost, target: "/v1/users", body: `{}`}, slog.LevelInfo, "/v1/users", 401, ""},
		{request{method: http.MethodDelete, target: "/v1/users/x", token: token(t)}, slog.LevelInfo, "/v1/users/{id}", 404, "tester"},
		{request{method: http.MethodGet, target: "/x"}, slog.LevelInfo, "unmatched", 404, ""},
	} {
		do(t, g, tc.req)
		r := <-records
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		if r.Message != "http request" || r.Level != tc.level || attrs["route"].String() != tc.route ||
			attrs["status"].Int64() != tc.status || attrs["client"].String() != "192.0.2.1" {
			t.Errorf("%s %s: record %q level %v attrs %v", tc.req.method, tc.req.target, r.Message, r.Level, attrs)
		}
		if sub, ok := attrs["subject"]; ok != (tc.subject != "") || (ok && sub.String() != tc.subject) {
			t.Errorf("%s %s: subject %v (logged %v), want %q", tc.req.method, tc.req.target, sub, ok, tc.subject)
		}
	}
}
