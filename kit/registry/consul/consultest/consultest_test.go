package consultest

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartRestartStop(t *testing.T) {
	a := Start(t)
	c := Client(t, a)
	leader, err := c.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("leader = %q, %v", leader, err)
	}
	if err := a.Restart(t.Context()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if leader, err := c.Status().Leader(); err != nil || leader == "" {
		t.Fatalf("after restart: leader = %q, %v", leader, err)
	}
}

// script writes an executable scripts/ensure-consul.sh with body into a new
// directory and returns the directory.
func script(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts", "ensure-consul.sh"), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFind(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "consul")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		env, path string // $CONSUL_BIN and $PATH
		script    string // body of the working directory's ensure script; "" for none
		want      string
		wantErr   bool
	}{
		{name: "CONSUL_BIN first", env: "/opt/consul", path: filepath.Dir(bin), script: "echo /from/script", want: "/opt/consul"},
		{name: "PATH before the script", path: filepath.Dir(bin), script: "echo /from/script", want: bin},
		{name: "the project's script", path: t.TempDir(), script: "echo progress >&2; echo /from/script", want: "/from/script"},
		{name: "a failing script", path: t.TempDir(), script: "exit 3", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONSUL_BIN", tc.env)
			t.Setenv("PATH", tc.path)
			t.Chdir(script(t, tc.script))
			got, err := Find(t.Context(), io.Discard)
			if tc.wantErr {
				if !errors.Is(err, ErrNoBinary) {
					t.Fatalf("Find = %q, %v; want an error wrapping ErrNoBinary", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Find = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestStartAgentNeedsBinary(t *testing.T) {
	if _, err := StartAgent(t.Context(), Config{}); err == nil {
		t.Fatal("StartAgent without a binary: no error")
	}
}

// TestStartACL: the agent denies what a request without a token asks, and
// its management token may do everything, also after a restart.
func TestStartACL(t *testing.T) {
	a := StartACL(t)
	if a.ManagementToken() == "" {
		t.Fatal("no management token")
	}
	for round := range 2 {
		pair := &api.KVPair{Key: "grpckit/svc", Value: []byte("log: {level: debug}\n")}
		_, err := TokenClient(t, a, "").KV().Put(pair, nil)
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusForbidden {
			t.Errorf("round %d: KV put without a token: %v, want 403", round, err)
		}
		if _, err := Client(t, a).KV().Put(pair, nil); err != nil {
			t.Errorf("round %d: KV put with the management token: %v", round, err)
		}
		if err := a.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}
