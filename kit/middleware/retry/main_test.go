package retry_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	echo        = testpbv1.TestService_Echo_FullMethodName   // NO_SIDE_EFFECTS
	put         = testpbv1.TestService_Put_FullMethodName    // IDEMPOTENT
	create      = testpbv1.TestService_Create_FullMethodName // not idempotent
	testService = "/testpb.v1.TestService/*"
)

// fastConfig is the default config with backoffs short enough for tests.
func fastConfig() retry.Config {
	cfg := retry.DefaultConfig()
	cfg.InitialBackoff = duration.Duration(time.Millisecond)
	cfg.MaxBackoff = duration.Duration(2 * time.Millisecond)
	return cfg
}

func newRetrier(t testing.TB, cfg retry.Config, opts ...retry.Option) *retry.Retrier {
	t.Helper()
	r, err := retry.New(cfg, opts...)
	if err != nil {
		t.Fatalf("retry.New: %v", err)
	}
	return r
}

// attempts returns the retry.AttemptKey metadata of every call svc
// received, "" when a call had none.
func attempts(svc *kittest.Service) []string {
	var out []string
	for _, md := range svc.Metadata() {
		v := md.Get(retry.AttemptKey)
		if len(v) == 0 {
			v = []string{""}
		}
		out = append(out, v[0])
	}
	return out
}

// noRetry returns, for every call svc received, whether it carried
// retry.NoRetryKey.
func noRetry(svc *kittest.Service) []bool {
	var out []bool
	for _, md := range svc.Metadata() {
		out = append(out, len(md.Get(retry.NoRetryKey)) > 0)
	}
	return out
}

// mustStamper returns the client side of dedupe for methods.
func mustStamper(methods ...string) *dedupe.Stamper {
	s, err := dedupe.NewClient(dedupe.ClientConfig{Methods: methods})
	if err != nil {
		panic(err)
	}
	return s
}
