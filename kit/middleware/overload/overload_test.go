package overload

import (
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClock() *fakeclock.Clock { return fakeclock.New(time.Unix(1_000_000_000, 0)) }
