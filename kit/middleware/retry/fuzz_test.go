package retry

import (
	"math"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// retryInfoURL is the type URL of a google.rpc.RetryInfo detail.
const retryInfoURL = "type.googleapis.com/google.rpc.RetryInfo"

// marshalRetryInfo returns the wire bytes of a RetryInfo asking for
// seconds and nanos, without checking them.
func marshalRetryInfo(tb testing.TB, seconds int64, nanos int32) []byte {
	tb.Helper()
	b, err := proto.Marshal(&errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: seconds, Nanos: nanos}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// wantRetryDelay is the oracle of retryDelay: the delay of the first
// RetryInfo detail whose retry_delay is a valid, non-negative duration;
// details that do not decode, and RetryInfos that ask for no delay, an
// invalid one or a negative one, are ignored.
func wantRetryDelay(p *spb.Status) (time.Duration, bool) {
	for _, d := range p.GetDetails() {
		if d.MessageName() != "google.rpc.RetryInfo" {
			continue
		}
		var ri errdetails.RetryInfo
		if proto.Unmarshal(d.GetValue(), &ri) != nil {
			continue
		}
		rd := ri.GetRetryDelay()
		if rd == nil || rd.CheckValid() != nil || rd.GetSeconds() < 0 || rd.GetNanos() < 0 {
			continue
		}
		return rd.AsDuration(), true
	}
	return 0, false
}

// FuzzRetryDelay feeds statuses whose details are arbitrary RetryInfo
// durations (negative, huge, out of range, of mixed signs) and arbitrary
// detail bytes through the pushback reading of the retry layer: it never
// panics; a pushback it takes is a valid, non-negative duration, and
// anything else is ignored; RESOURCE_EXHAUSTED is retried exactly when a
// pushback was taken; the wait before a retry is non-negative, never
// shorter than the pushback, and bounded by MaxBackoff (plus jitter); a
// pushback over MaxBackoff refuses the retry.
func FuzzRetryDelay(f *testing.F) {
	f.Add(uint32(codes.ResourceExhausted), int64(0), int32(200_000_000), []byte(nil), false)
	f.Add(uint32(codes.Unavailable), int64(2), int32(0), []byte(nil), false)
	f.Add(uint32(codes.ResourceExhausted), int64(-1), int32(0), []byte(nil), false)
	f.Add(uint32(codes.ResourceExhausted), int64(0), int32(-5), []byte(nil), false)
	f.Add(uint32(codes.ResourceExhausted), int64(1), int32(-500_000_000), []byte(nil), false)
	f.Add(uint32(codes.ResourceExhausted), int64(math.MaxInt64), int32(999_999_999), []byte(nil), false)
	f.Add(uint32(codes.ResourceExhausted), int64(math.MinInt64), int32(math.MinInt32), []byte(nil), false)
	f.Add(uint32(codes.ResourceExhausted), int64(0), int32(2_000_000_000), []byte(nil), false)
	f.Add(uint32(codes.Unavailable), int64(0), int32(0), []byte{0x0a, 0x02, 0x08, 0x7f}, true) // RetryInfo{retry_delay: -1s}
	f.Add(uint32(codes.ResourceExhausted), int64(0), int32(0), []byte{0x0a, 0x80}, true)       // truncated
	f.Add(uint32(codes.ResourceExhausted), int64(0), int32(0), []byte{0xff, 0xff, 0xff}, false)
	f.Add(uint32(99), int64(0), int32(1), []byte(""), true)

	c, err := compile(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	maxBackoff := time.Duration(c.cfg.MaxBackoff)
	f.Fuzz(func(t *testing.T, code uint32, seconds int64, nanos int32, raw []byte, rawFirst bool) {
		ri := &anypb.Any{TypeUrl: retryInfoURL, Value: marshalRetryInfo(t, seconds, nanos)}
		rawDetail := &anypb.Any{TypeUrl: retryInfoURL, Value: raw}
		details := []*anypb.Any{ri, rawDetail}
		if rawFirst {
			details[0], details[1] = details[1], details[0]
		}
		p := &spb.Status{Code: int32(code), Message: "m", Details: details}
		err := status.ErrorProto(p)

		got, ok := retryDelay(err)
		want, wantOK := wantRetryDelay(p)
		if err == nil { // codes.OK: no error, whatever the details
			want, wantOK = 0, false
		}
		if got != want || ok != wantOK {
			t.Fatalf("retryDelay = %v, %v; want %v, %v", got, ok, want, wantOK)
		}
		if ok && got < 0 {
			t.Fatalf("retryDelay = %v, a negative pushback", got)
		}

		if codes.Code(code) == codes.ResourceExhausted && c.retries(err) != ok {
			t.Fatalf("RESOURCE_EXHAUSTED with pushback %v, %v: retried %v", got, ok, c.retries(err))
		}
		for n := 1; n <= c.cfg.MaxAttempts; n++ {
			wait, retry := c.backoff(n, err)
			if !retry {
				if !ok || got <= maxBackoff {
					t.Fatalf("backoff(%d) refused the retry; pushback %v, %v", n, got, ok)
				}
				continue
			}
			if ok && got > maxBackoff {
				t.Fatalf("backoff(%d) = %v for a pushback %v over MaxBackoff %v", n, wait, got, maxBackoff)
			}
			if wait < 0 || float64(wait) > float64(maxBackoff)*(1+c.cfg.Jitter)+1 {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, wait, maxBackoff)
			}
			if ok && wait < got {
				t.Fatalf("backoff(%d) = %v, shorter than the pushback %v", n, wait, got)
			}
		}
	})
}
