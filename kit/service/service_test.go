package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Config struct {
	config.Standard `yaml:",inline"`
	App             App `yaml:"app"`
}

type App struct {
	Greeting string `yaml:"greeting"`
	Name     string `yaml:"name"`
}

func defaults() Config {
	return Config{Standard: config.DefaultStandard(), App: App{Greeting: "hello", Name: "world"}}
}

// args run a service on loopback without Consul, admin listener or drain.
func args(extra ...string) []string {
	return append([]string{"-registry.address", "off", "-server.admin", "", "-server.drain", "0s", "-auth.disabled"}, extra...)
}

func noEnv(string) (string, bool) { return "", false }

var errStop = errors.New("stop here")

// TestConfigPrecedence: defaults, then the environment, then flags.
func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{"GRPCKIT_APP_GREETING": "hi", "GRPCKIT_APP_NAME": "env"}
	var got App
	err := service.Run(t.Context(), "svc", defaults(), func(s *service.Service[Config]) error {
		got = s.Value().App
		return errStop
	}, service.WithArgs(args("-app.name", "flag")), service.WithOutput(io.Discard),
		service.WithConfigOptions(config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })))
	if !errors.Is(err, errStop) {
		t.Fatalf("Run = %v, want the setup's error", err)
	}
	if got != (App{Greeting: "hi", Name: "flag"}) {
		t.Errorf("app = %+v, want greeting from the environment, name from the flag", got)
	}
}

// TestPrintConfig: -print-config prints and serves nothing.
func TestPrintConfig(t *testing.T) {
	var out strings.Builder
	err := service.Run(t.Context(), "svc", defaults(), func(*service.Service[Config]) error {
		t.Error("setup ran after -print-config")
		return nil
	}, service.WithArgs(args("-print-config")), service.WithOutput(&out), service.WithConfigOptions(config.WithEnv(noEnv)))
	if !errors.Is(err, config.ErrPrinted) || !strings.Contains(out.String(), "greeting: hello") {
		t.Errorf("Run = %v, output %q", err, out.String())
	}
	err = service.Run(t.Context(), "svc", defaults(), nil, service.WithArgs([]string{"-h"}), service.WithOutput(io.Discard))
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Run -h = %v, want flag.ErrHelp", err)
	}
}

// recorder keeps the order of shutdown events.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// TestServeAndStopInOrder: the service serves gRPC and its extra HTTP
// listener; when the context ends, the HTTP listener stops (after the
// drain, its request in flight finishing), then gRPC, then the clients are
// closed and the OnStop hooks run in reverse order.
func TestServeAndStopInOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	var rec recorder
	ready := make(chan [2]net.Addr, 1)
	var client *grpc.ClientConn
	inFlight, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, "svc", defaults(), func(s *service.Service[Config]) error {
			(&kittest.Service{}).Register(s.Server)
			mux := http.NewServeMux()
			mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
				close(inFlight)
				<-release
				io.WriteString(w, "done")
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s.Value().App.Greeting) })
			httpAddr, err := s.HTTP("http", "127.0.0.1:0", &http.Server{Handler: mux, ReadHeaderTimeout: time.Second})
			if err != nil {
				return err
			}
			if client, err = s.Client("passthrough:///127.0.0.1:1"); err != nil {
				return err
			}
			s.OnStop(func(context.Context) error { rec.add("first hook"); return nil })
			s.OnStop(func(context.Context) error {
				rec.add("second hook")
				if client.GetState() != connectivity.Shutdown {
					t.Error("a hook ran before the clients were closed")
				}
				return nil
			})
			go func() {
				kittest.WaitFor(t, "the gRPC listener", func() bool { return s.Server.Addr() != nil })
				ready <- [2]net.Addr{s.Server.Addr(), httpAddr}
			}()
			return nil
		}, service.WithArgs(args()), service.WithOutput(io.Discard), service.WithConfigOptions(config.WithEnv(noEnv)),
			service.WithReadyFile(readyFile))
	}()
	addrs := <-ready
	// The ready report names the addresses the service got on port 0.
	var report service.Ready
	kittest.WaitFor(t, "the ready report", func() bool {
		b, err := os.ReadFile(readyFile)
		return err == nil && json.Unmarshal(b, &report) == nil
	})
	if report.Service != "svc" || report.GRPC != addrs[0].String() || report.Listeners["http"] != addrs[1].String() || report.Admin != "" {
		t.Errorf("ready report %+v, want grpc %s and http %s", report, addrs[0], addrs[1])
	}
	resp, err := http.Get("http://" + addrs[1].String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("HTTP answer %q", body)
	}
	if c, err := net.Dial("tcp", addrs[0].String()); err != nil {
		t.Errorf("gRPC listener: %v", err)
	} else {
		c.Close()
	}
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addrs[1].String() + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-inFlight
	cancel()
	// The shutdown closes the HTTP listener first and then waits for the
	// request in flight: release it once new connections are refused.
	kittest.WaitFor(t, "the HTTP listener to close", func() bool {
		c, err := net.Dial("tcp", addrs[1].String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := <-slow; got != "done" {
		t.Errorf("the request in flight during the shutdown got %q", got)
	}
	if got := rec.get(); !slices.Equal(got, []string{"second hook", "first hook"}) {
		t.Errorf("hooks ran %q, want the reverse order of addition", got)
	}
	for _, a := range addrs {
		if c, err := net.Dial("tcp", a.String()); err == nil {
			c.Close()
			t.Errorf("%s still listens after Run returned", a)
		}
	}
}

// TestFailedStartReleasesEverything: when setup fails, the listeners,
// clients, hooks and the server made so far are released (goleak checks the
// goroutines) and the error is returned.
func TestFailedStartReleasesEverything(t *testing.T) {
	var httpAddr net.Addr
	hook := false
	err := service.Run(t.Context(), "svc", defaults(), func(s *service.Service[Config]) error {
		var err error
		if httpAddr, err = s.HTTP("http", "127.0.0.1:0", &http.Server{ReadHeaderTimeout: time.Second}); err != nil {
			return err
		}
		cc, err := s.Client("passthrough:///127.0.0.1:1")
		if err != nil {
			return err
		}
		cc.Connect()
		s.OnStop(func(context.Context) error { hook = true; return nil })
		return errStop
	}, service.WithArgs(args()), service.WithOutput(io.Discard), service.WithConfigOptions(config.WithEnv(noEnv)))
	if !errors.Is(err, errStop) {
		t.Fatalf("Run = %v, want the setup's error", err)
	}
	if !hook {
		t.Error("the OnStop hook did not run")
	}
	if c, err := net.Dial("tcp", httpAddr.String()); err == nil {
		c.Close()
		t.Error("the HTTP listener is still open")
	}
}

// TestInvalidConfigRefused: an invalid setting fails the start with its
// path named.
func TestInvalidConfigRefused(t *testing.T) {
	err := service.Run(t.Context(), "svc", defaults(), func(*service.Service[Config]) error { return nil },
		service.WithArgs(args("-server.shutdown_timeout", "-1s")), service.WithOutput(io.Discard), service.WithConfigOptions(config.WithEnv(noEnv)))
	if err == nil || !strings.Contains(err.Error(), "server.shutdown_timeout") {
		t.Errorf("Run = %v, want an error naming server.shutdown_timeout", err)
	}
}
