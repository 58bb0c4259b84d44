package telemetry

import (
	"context"
	"encoding/hex"
	"maps"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// isLowerHex reports whether s is n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseTraceparent is the oracle of FuzzExtract: the W3C Trace Context
// rules for a traceparent value ("version-traceid-parentid-flags", lowercase
// hex; version ff is invalid; version 00 has nothing after the flags, and,
// as OpenTelemetry reads it, only the sampled and random flag bits; a later
// version may carry more fields after a '-'; the trace and parent IDs are
// not all zeros). ok is false for an invalid value.
func parseTraceparent(h string) (traceID, spanID string, sampled, ok bool) {
	parts := strings.SplitN(h, "-", 5)
	if len(parts) < 4 {
		return "", "", false, false
	}
	ver, tid, sid, flags := parts[0], parts[1], parts[2], parts[3]
	if !isLowerHex(ver, 2) || ver == "ff" || !isLowerHex(tid, 32) || !isLowerHex(sid, 16) || !isLowerHex(flags, 2) {
		return "", "", false, false
	}
	if tid == strings.Repeat("0", 32) || sid == strings.Repeat("0", 16) {
		return "", "", false, false
	}
	f, _ := hex.DecodeString(flags)
	if ver == "00" && (len(parts) == 5 || f[0] > 3) {
		return "", "", false, false
	}
	return tid, sid, f[0]&1 == 1, true
}

// members returns the members of b as key -> value.
func members(b baggage.Baggage) map[string]string {
	m := map[string]string{}
	for _, mem := range b.Members() {
		m[mem.Key()] = mem.Value()
	}
	return m
}

// FuzzExtract sends arbitrary traceparent, tracestate and baggage metadata
// to the server interceptor, as a caller would: it never panics; the
// handler sees a remote parent exactly when the traceparent is valid (W3C
// rules), with the trace ID, parent ID and sampled flag it names, and none
// for an invalid one; the baggage it sees holds the header's members when
// the header parses, and otherwise only members that a list member of the
// header gives (invalid ones are dropped), within the W3C limits, and
// prints back to an equal baggage.
func FuzzExtract(f *testing.F) {
	for _, s := range [][3]string{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE", "userId=alice,serverNode=DF%2028"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", "a=1,b=2", "k=v;prop=1"},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "", ""}, // upper case
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", ""}, // zero trace ID
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "", ""}, // zero parent ID
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "", ""},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra", "", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-04", "", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "", ""},
		{" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", ""},
		{"", "", "=,;%zz"},
		{"garbage", "x" + strings.Repeat("=y,", 40), strings.Repeat("k=v,", 200)},
		{"", "", "k=" + strings.Repeat("v", 9000)},
	} {
		f.Add(s[0], s[1], s[2])
	}
	tel, err := New(context.Background(), Config{ServiceName: "fuzz"}, WithEnv(func(string) string { return "" }))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	intercept := tel.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.test.v1.Echo/Echo"}

	f.Fuzz(func(t *testing.T, traceparent, tracestate, bag string) {
		md := metadata.MD{}
		for k, v := range map[string]string{"traceparent": traceparent, "tracestate": tracestate, "baggage": bag} {
			if v != "" {
				md[k] = []string{v}
			}
		}
		var sc trace.SpanContext
		var gotBag baggage.Baggage
		_, err := intercept(metadata.NewIncomingContext(t.Context(), md), nil, info, func(ctx context.Context, _ any) (any, error) {
			sc = trace.SpanContextFromContext(ctx)
			gotBag = baggage.FromContext(ctx)
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}

		tid, sid, sampled, ok := parseTraceparent(traceparent)
		if sc.IsValid() != ok {
			t.Fatalf("traceparent %q: remote parent %v, want valid %v", traceparent, sc, ok)
		}
		if ok && (!sc.IsRemote() || sc.TraceID().String() != tid || sc.SpanID().String() != sid || sc.IsSampled() != sampled) {
			t.Fatalf("traceparent %q: remote parent %s-%s sampled %v remote %v", traceparent, sc.TraceID(), sc.SpanID(), sc.IsSampled(), sc.IsRemote())
		}

		if want, err := baggage.Parse(bag); err == nil && !maps.Equal(members(gotBag), members(want)) {
			t.Fatalf("baggage %q: the handler sees %v, want %v", bag, members(gotBag), members(want))
		}
		// Invalid list members are dropped; no member is made up.
		for k, v := range members(gotBag) {
			found := false
			for e := range strings.SplitSeq(bag, ",") {
				one, err := baggage.Parse(e)
				found = found || err == nil && one.Member(k).Value() == v && one.Member(k).Key() == k
			}
			if !found {
				t.Fatalf("baggage %q: the handler sees the member %s=%s, which no list member of the header gives", bag, k, v)
			}
		}
		if gotBag.Len() > 180 || len(gotBag.String()) > 8192 {
			t.Fatalf("baggage of %d members, %d bytes: over the W3C limits", gotBag.Len(), len(gotBag.String()))
		}
		back, err := baggage.Parse(gotBag.String())
		if err != nil || !maps.Equal(members(back), members(gotBag)) {
			t.Fatalf("the baggage seen, %q, does not parse back: %v", gotBag.String(), err)
		}
	})
}
