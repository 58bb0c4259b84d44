package dedupe_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit/duration"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	create      = testpbv1.TestService_Create_FullMethodName // not idempotent
	echo        = testpbv1.TestService_Echo_FullMethodName
	testService = "/testpb.v1.TestService/*"
)

func newCache(t *testing.T, cfg dedupe.Config, opts ...dedupe.Option) *dedupe.Cache {
	t.Helper()
	c, err := dedupe.New(cfg, opts...)
	if err != nil {
		t.Fatalf("dedupe.New: %v", err)
	}
	return c
}

func newRetrier(t *testing.T) *retry.Retrier {
	t.Helper()
	cfg := retry.DefaultConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = duration.Duration(time.Millisecond), duration.Duration(2*time.Millisecond)
	r, err := retry.New(cfg)
	if err != nil {
		t.Fatalf("retry.New: %v", err)
	}
	return r
}
