package consultest

import (
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
