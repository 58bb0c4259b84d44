package main

import (
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.StopAfter(m)) }

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		section Section
		wantErr string // a substring; empty for no error
	}{
		{name: "default", section: DefaultConfig().User},
		{name: "postgres", section: Section{DB: "users.db", PostgresDSN: "postgres://h/db"}},
		{name: "postgres without db", section: Section{PostgresDSN: "postgres://h/db"}},
		{name: "neither", section: Section{}, wantErr: "user.db must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.User = tt.section
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestOpenStore opens each kind of store and checks that it works.
func TestOpenStore(t *testing.T) {
	tests := []struct {
		name    string
		section func(t *testing.T) Section
	}{
		{name: "sqlite", section: func(t *testing.T) Section {
			return Section{DB: filepath.Join(t.TempDir(), "users.db")}
		}},
		{name: "postgres", section: func(t *testing.T) Section {
			// SQLite could not create db, in a missing directory.
			return Section{DB: filepath.Join(t.TempDir(), "unused", "users.db"), PostgresDSN: pgtest.Start(t)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := openStore(t.Context(), tt.section(t))
			if err != nil {
				t.Fatalf("openStore: %v", err)
			}
			defer store.Close()
			u, err := store.Create(t.Context(), "Alice", "alice@example.com")
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := store.Get(t.Context(), u.ID); err != nil {
				t.Errorf("Get: %v", err)
			}
		})
	}
}
