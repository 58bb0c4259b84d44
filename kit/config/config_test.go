package config_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// svcConfig is a service's config: the standard sections plus its own.
type svcConfig struct {
	config.Standard `yaml:",inline"`
	Store           storeSection `yaml:"store"`
}

type storeSection struct {
	DSN   string `yaml:"dsn" kit:"secret"`
	Pages int    `yaml:"pages"`
}

func (c *svcConfig) Validate() error {
	if c.Store.Pages < 1 || c.Store.Pages > 1000 {
		return errors.New("store.pages must be within 1..1000")
	}
	return nil
}

func defaults() svcConfig {
	return svcConfig{Standard: config.DefaultStandard(), Store: storeSection{DSN: "users.db", Pages: 50}}
}

// env is a fake environment.
func env(kv ...string) config.Option {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return config.WithEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load loads with no Consul, an empty environment unless given, and
// closes the store at the end of the test.
func load(t *testing.T, opts ...config.Option) *config.Store[svcConfig] {
	t.Helper()
	s, err := config.Load("svc", defaults(), append([]config.Option{config.WithoutConsul(), env()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "svc.yaml")
	writeFile(t, file, `
ratelimit: {rps: 10, burst: 20}
timeout: {default: 2s}
store: {pages: 7}
registry: {tags: [from-file]}
`)
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	s := load(t, config.WithFile(file),
		env("GRPCKIT_RATELIMIT_RPS", "30", "GRPCKIT_TIMEOUT_DEFAULT", "3s", "GRPCKIT_REGISTRY_TAGS", "a, b"),
		config.WithFlags(fs, []string{"-ratelimit.rps", "40"}))
	got := s.Current().Value
	want := defaults()
	want.RateLimit.RPS = 40                                   // flags beat env beat file
	want.RateLimit.Burst = 20                                 // file beats defaults
	want.Timeout.Default = duration.Duration(3 * time.Second) // env beats file
	want.Registry.Tags = []string{"a", "b"}
	want.Store.Pages = 7
	want.Telemetry.ServiceName = "svc" // the service name unless configured
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if v := s.Current().Version; v != 1 {
		t.Errorf("version %d, want 1", v)
	}
}

var cmpOpts = cmp.Options{cmp.Exporter(func(reflect.Type) bool { return true }), cmpopts.EquateEmpty()}

func TestBadInputIsRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file string
		env        []string
		args       []string
		want       string
	}{
		{name: "yaml syntax", file: "ratelimit: {rps: [", want: "config: file"},
		{name: "unknown key", file: "ratelimit: {rsp: 5}", want: "field rsp not found"},
		{name: "wrong type", file: "ratelimit: {rps: fast}", want: "rps"},
		{name: "out of range", file: "ratelimit: {rps: -1}", want: "rps must be within"},
		{name: "service section", file: "store: {pages: 0}", want: "store.pages"},
		{name: "balancer", file: "balancer: {failure_ratio: 2}", want: "failure_ratio"},
		{name: "env", env: []string{"GRPCKIT_SERVER_DRAIN", "soon"}, want: "GRPCKIT_SERVER_DRAIN"},
		{name: "flag", args: []string{"-log.level", "loud"}, want: "log.level"},
		{name: "secret as a flag", args: []string{"-auth.hmac_secret", "0123456789abcdef0123456789abcdef"}, want: "auth.hmac_secret is a secret and cannot be a flag"},
		{name: "token as a flag", args: []string{"-registry.token=abc"}, want: "set GRPCKIT_REGISTRY_TOKEN or the file"},
		{name: "provider keys without audience", file: "auth: {public_key_files: [idp.pem], issuer: https://idp.example}", want: "auth: audience is required"},
		{name: "document not a mapping", file: "just text", want: "config: file"},
		{name: "duplicate key", file: "ratelimit: {rps: 1}\nratelimit: {rps: 2}", want: "defined twice"},
		{name: "alias bomb", file: "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]", want: "too many nodes"},
		{name: "bool env", env: []string{"GRPCKIT_TELEMETRY_METRICS", "maybe"}, want: "GRPCKIT_TELEMETRY_METRICS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []config.Option{config.WithoutConsul(), env(tc.env...)}
			if tc.file != "" {
				path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
				writeFile(t, path, tc.file)
				opts = append(opts, config.WithFile(path))
			}
			if tc.args != nil {
				fs := flag.NewFlagSet("svc", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				opts = append(opts, config.WithFlags(fs, tc.args))
			}
			s, err := config.Load("svc", defaults(), opts...)
			if err == nil {
				s.Close()
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	_, err := config.Load("svc", defaults(), config.WithoutConsul(),
		env("GRPCKIT_REGISTRY_TOKEN", "s3cret", "GRPCKIT_STORE_DSN", "postgres://u:pw@h/db"),
		config.WithFlags(fs, []string{"-print-config", "-ratelimit.rps=5"}), config.WithOutput(&out))
	if !errors.Is(err, config.ErrPrinted) {
		t.Fatalf("Load = %v, want ErrPrinted", err)
	}
	text := out.String()
	for _, secret := range []string{"s3cret", "pw@h"} {
		if strings.Contains(text, secret) {
			t.Errorf("printed config shows the secret %q:\n%s", secret, text)
		}
	}
	for _, want := range []string{"token: '****'", "dsn: '****'", "rps: 5", "version 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("printed config lacks %q:\n%s", want, text)
		}
	}
}

func TestFlagNamesAndEnvNames(t *testing.T) {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	load(t, config.WithFlags(fs, nil))
	for name, env := range map[string]string{
		"ratelimit.rps":             "GRPCKIT_RATELIMIT_RPS",
		"server.listen":             "GRPCKIT_SERVER_LISTEN",
		"timeout.server_max":        "GRPCKIT_TIMEOUT_SERVER_MAX",
		"balancer.failure_ratio":    "GRPCKIT_BALANCER_FAILURE_RATIO",
		"log.access.slow_threshold": "GRPCKIT_LOG_ACCESS_SLOW_THRESHOLD",
		"ratelimit.per_caller.rps":  "GRPCKIT_RATELIMIT_PER_CALLER_RPS",
		"store.dsn":                 "GRPCKIT_STORE_DSN",
		"config":                    "",
		"print-config":              "",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag -%s", name)
			continue
		}
		if env != "" && !strings.Contains(f.Usage, env) {
			t.Errorf("-%s usage %q does not name %s", name, f.Usage, env)
		}
	}
}

func TestPerMethodKeysKeepTheirDots(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	writeFile(t, file, `ratelimit: {per_method: {"/greeter.v1.GreeterService/SayHello": {rps: 3}}}`)
	s := load(t, config.WithFile(file))
	pm := s.Current().Value.RateLimit.PerMethod
	if got := pm["/greeter.v1.GreeterService/SayHello"].RPS; got != 3 {
		t.Errorf("per_method = %+v, want SayHello at 3 rps", pm)
	}
}

// saveAtomically writes content next to path and renames it over path, as
// editors and config tools do.
func saveAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp-save"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// changes subscribes to s and returns a channel of the accepted snapshots.
func changes(t *testing.T, s *config.Store[svcConfig]) <-chan *config.Snapshot[svcConfig] {
	ch := make(chan *config.Snapshot[svcConfig], 16)
	t.Cleanup(s.Subscribe(func(snap *config.Snapshot[svcConfig]) { ch <- snap }))
	return ch
}

func next(t *testing.T, ch <-chan *config.Snapshot[svcConfig]) *config.Snapshot[svcConfig] {
	t.Helper()
	select {
	case snap := <-ch:
		return snap
	case <-time.After(5 * time.Second):
		t.Fatal("no configuration change within 5s")
		return nil
	}
}

func TestFileReloadAndEditorFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "svc.yaml")
	writeFile(t, file, "ratelimit: {rps: 1}\n")
	s := load(t, config.WithFile(file))
	ch := changes(t, s)

	saveAtomically(t, file, "ratelimit: {rps: 2}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 2 || snap.Version != 2 || !strings.HasPrefix(snap.Source, "file ") {
		t.Fatalf("after an atomic save: rps %v version %d source %q", snap.Value.RateLimit.RPS, snap.Version, snap.Source)
	}

	// Editor droppings next to the file: vim's swap, backup and probe files,
	// emacs' lock and autosave files. None may reload.
	for _, name := range []string{".svc.yaml.swp", "svc.yaml~", "4913", ".#svc.yaml", "#svc.yaml#"} {
		writeFile(t, filepath.Join(dir, name), "ratelimit: {rps: 99}\n")
	}
	// Rewriting the same contents does not reload either.
	writeFile(t, file, "ratelimit: {rps: 2}\n")
	// A real edit after them: it must be the next change, version 3.
	writeFile(t, file, "ratelimit: {rps: 3}\n")
	snap := next(t, ch)
	if snap.Value.RateLimit.RPS != 3 || snap.Version != 3 {
		t.Fatalf("next change: rps %v version %d, want 3 and 3 (an editor file or a no-op write reloaded)", snap.Value.RateLimit.RPS, snap.Version)
	}
}

func TestInvalidChangeKeepsThePreviousConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "svc.yaml")
	writeFile(t, file, "ratelimit: {rps: 1}\n")
	s := load(t, config.WithFile(file))
	ch := changes(t, s)

	for i, bad := range []string{"ratelimit: {rps: [", "ratelimit: {rps: -5}", "store: {pages: 5000}"} {
		saveAtomically(t, file, bad)
		kittest.WaitFor(t, fmt.Sprintf("change %q to be refused", bad), func() bool { return s.Info().Rejected == uint64(i+1) })
		if cur := s.Current(); cur.Version != 1 || cur.Value.RateLimit.RPS != 1 {
			t.Fatalf("after %q: version %d rps %v, want the start config", bad, cur.Version, cur.Value.RateLimit.RPS)
		}
		if info := s.Info(); info.LastError == "" {
			t.Errorf("Info has no reason for refusing %q", bad)
		}
	}
	saveAtomically(t, file, "ratelimit: {rps: 4}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 4 || snap.Version != 2 {
		t.Fatalf("a valid change after refused ones: rps %v version %d", snap.Value.RateLimit.RPS, snap.Version)
	}
}

func TestConcurrentReadsDuringReloads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "svc.yaml")
	writeFile(t, file, "ratelimit: {rps: 1, burst: 1}\n")
	s := load(t, config.WithFile(file))
	ch := changes(t, s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Every snapshot is whole: rps and burst move together.
				c := s.Current().Value.RateLimit
				if float64(c.Burst) != c.RPS {
					t.Errorf("torn snapshot: rps %v burst %d", c.RPS, c.Burst)
					return
				}
				_ = s.Info()
			}
		})
	}
	for i := 2; i <= 6; i++ {
		saveAtomically(t, file, strings.ReplaceAll("ratelimit: {rps: N, burst: N}\n", "N", string(rune('0'+i))))
		for snap := next(t, ch); snap.Value.RateLimit.RPS != float64(i); snap = next(t, ch) {
		}
	}
	close(stop)
	wg.Wait()
}

// TestScalarsKeepTheirText: a value is decoded from its text as written,
// whatever it looks like to YAML (an octal or hex number, a float, a date).
func TestScalarsKeepTheirText(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	writeFile(t, file, `
registry:
  token: 0123
  advertise: 1.10
  meta: {version: 1.10, build: 0x1F, date: 2024-01-02}
  tags: [1.10, 010]
store: {dsn: 0777}
`)
	s := load(t, config.WithFile(file), env("GRPCKIT_REGISTRY_ADVERTISE", "007"))
	got := s.Current().Value
	want := map[string]string{"version": "1.10", "build": "0x1F", "date": "2024-01-02"}
	if diff := cmp.Diff(want, got.Registry.Meta); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	if got.Registry.Token != "0123" || got.Registry.Advertise != "007" || got.Store.DSN != "0777" {
		t.Errorf("token %q advertise %q dsn %q, want 0123, 007, 0777", got.Registry.Token, got.Registry.Advertise, got.Store.DSN)
	}
	if diff := cmp.Diff([]string{"1.10", "010"}, got.Registry.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
}

// TestSubscriberMayReadTheStore: a subscriber that reads the store, even
// subscribing from inside the callback, does not block changes or Close.
func TestSubscriberMayReadTheStore(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	writeFile(t, file, "ratelimit: {rps: 1}\n")
	s := load(t, config.WithFile(file))
	got := make(chan config.Info, 4)
	t.Cleanup(s.Subscribe(func(snap *config.Snapshot[svcConfig]) {
		cancel := s.Subscribe(func(*config.Snapshot[svcConfig]) {})
		cancel()
		got <- s.Info()
	}))
	saveAtomically(t, file, "ratelimit: {rps: 2}\n")
	select {
	case info := <-got:
		if info.Version != 2 {
			t.Errorf("Info inside the callback: version %d, want 2", info.Version)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the change did not reach the subscriber within 5s (deadlock?)")
	}
}

func TestBoolFlagsAndEnv(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want bool
	}{
		{args: []string{"-telemetry.metrics=false", "-ratelimit.rps=3"}, want: false},
		{args: []string{"-telemetry.metrics=0"}, want: false},
		{args: []string{"-telemetry.metrics"}, env: []string{"GRPCKIT_TELEMETRY_METRICS", "0"}, want: true}, // a flag alone is true
		{env: []string{"GRPCKIT_TELEMETRY_METRICS", "false"}, want: false},
		{env: []string{"GRPCKIT_TELEMETRY_METRICS", "1"}, want: true},
	} {
		fs := flag.NewFlagSet("svc", flag.ContinueOnError)
		s := load(t, env(tc.env...), config.WithFlags(fs, tc.args))
		if got := s.Current().Value.Telemetry.Metrics; got != tc.want {
			t.Errorf("args %v env %v: metrics %v, want %v", tc.args, tc.env, got, tc.want)
		}
	}
}

// TestEmptyFileKeepsTheConfig: a file emptied after start (a writer between
// truncating and writing) does not reset the settings to their defaults.
func TestEmptyFileKeepsTheConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	writeFile(t, file, "ratelimit: {rps: 5}\n")
	s := load(t, config.WithFile(file))
	ch := changes(t, s)
	writeFile(t, file, "")
	writeFile(t, file, "ratelimit: {rps: 6}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 6 || snap.Version != 2 {
		t.Errorf("after emptying and rewriting the file: rps %v version %d, want 6 and 2 (the empty file made a version)", snap.Value.RateLimit.RPS, snap.Version)
	}
}

type secretsConfig struct {
	config.Standard `yaml:",inline"`
	Vault           struct {
		Keys  []string          `yaml:"keys" kit:"secret"`
		Pairs map[string]string `yaml:"pairs" kit:"secret"`
	} `yaml:"vault"`
}

func TestPrintMasksListsAndMapsOfSecrets(t *testing.T) {
	var out bytes.Buffer
	d := secretsConfig{Standard: config.DefaultStandard()}
	d.Vault.Keys = []string{"k1-secret"}
	d.Vault.Pairs = map[string]string{"db": "hunter2"}
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	_, err := config.Load("svc", d, config.WithoutConsul(), env(), config.WithFlags(fs, []string{"-print-config"}), config.WithOutput(&out))
	if !errors.Is(err, config.ErrPrinted) {
		t.Fatal(err)
	}
	for _, secret := range []string{"k1-secret", "hunter2"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("printed config shows %q:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "db: '****'") {
		t.Errorf("map keys should stay readable:\n%s", out.String())
	}
}

// TestConfigMapUpdateReloads: the layout Kubernetes mounts a ConfigMap in
// (svc.yaml -> ..data/svc.yaml, ..data -> a timestamped directory, swapped
// by a rename on update) reloads.
func TestConfigMapUpdateReloads(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "svc.yaml"), content)
	}
	version("..2026_01", "ratelimit: {rps: 1}\n")
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/svc.yaml", filepath.Join(dir, "svc.yaml")); err != nil {
		t.Fatal(err)
	}
	s := load(t, config.WithFile(filepath.Join(dir, "svc.yaml")))
	ch := changes(t, s)
	version("..2026_02", "ratelimit: {rps: 2}\n")
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 2 {
		t.Errorf("after the ConfigMap update: rps %v, want 2", snap.Value.RateLimit.RPS)
	}
}
