package consultest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

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
