package telemetry

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/statuscode"
)

// scopeName is the instrumentation scope of the RPC metrics.
const scopeName = "github.com/grpckit/grpckit/kit/middleware/telemetry"

// Cache bounds: method names come from the wire on the server (a client may
// call any name), addresses from the endpoints a client reaches. Past the
// bound the attribute set is built per call instead of cached.
const (
	maxMethods   = 1024
	maxAddresses = 256 // per method
)

// durationBuckets are otelgrpc's bucket boundaries, in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// rpcMetrics records rpc.server.call.duration or rpc.client.call.duration
// with the instrument, unit, buckets and attributes otelgrpc v0.72 uses
// (see TestMetricsMatchOtelgrpc), from kit's interceptors rather than a
// stats handler, and with the attribute sets cached per method, status
// code and server address, so that recording a call allocates nothing.
// otelgrpc builds and hashes a new attribute set on every call.
type rpcMetrics struct {
	client bool
	hist   metric.Float64Histogram

	methods methodCache[*methodMetrics]

	addrs addrCache[string] // formatted peer addresses
}

// maxAddrStrings bounds the caches of formatted peer addresses.
const maxAddrStrings = 256

// methodMetrics holds the record options of one method.
type methodMetrics struct {
	attrs  []attribute.KeyValue // rpc.method when well formed, rpc.system.name
	byCode [codes.Unauthenticated + 1]atomic.Pointer[[]metric.RecordOption]

	mu     sync.RWMutex
	byAddr map[addrKey][]metric.RecordOption // guarded by mu; at most maxAddresses
}

type addrKey struct {
	code codes.Code
	addr string
}

func newRPCMetrics(mp metric.MeterProvider, client bool) (*rpcMetrics, error) {
	meter := mp.Meter(scopeName, metric.WithSchemaURL(semconv.SchemaURL))
	r := &rpcMetrics{client: client, methods: newMethodCache[*methodMetrics](), addrs: newAddrCache[string]()}
	buckets := metric.WithExplicitBucketBoundaries(durationBuckets...)
	if client {
		d, err := rpcconv.NewClientCallDuration(meter, buckets)
		if err != nil {
			return nil, err
		}
		r.hist = d.Inst()
	} else {
		d, err := rpcconv.NewServerCallDuration(meter, buckets)
		if err != nil {
			return nil, err
		}
		r.hist = d.Inst()
	}
	return r, nil
}

// method returns the metrics of fullMethod.
func (r *rpcMetrics) method(fullMethod string) *methodMetrics {
	return r.methods.get(fullMethod, func() *methodMetrics {
		m := &methodMetrics{byAddr: map[addrKey][]metric.RecordOption{}}
		if name, ok := strings.CutPrefix(fullMethod, "/"); ok {
			m.attrs = append(m.attrs, semconv.RPCMethod(name))
		}
		m.attrs = append(m.attrs, semconv.RPCSystemNameGRPC)
		return m
	})
}

// record records one call of m that began at start and ended with err, on
// the client against the server at addr (nil when the call reached none).
func (r *rpcMetrics) record(ctx context.Context, m *methodMetrics, start time.Time, err error, addr net.Addr) {
	elapsed := float64(time.Since(start)) / 1e9
	var a string
	if addr != nil {
		a = r.addrString(addr)
	}
	r.hist.Record(ctx, elapsed, r.recordOptions(m, codeOf(err), a)...)
}

// codeOf is the status code a call ending with err reports, as grpc-go
// derives it: the error's status, else the context error's code, else
// Unknown.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return status.Code(err)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// addrString formats a, from the cache when a is a TCP address seen before.
func (r *rpcMetrics) addrString(a net.Addr) string {
	return r.addrs.get(a, func(s string) string { return s })
}

// addrCache holds what is derived from the string form of peer addresses,
// by address: a transport keeps one *net.TCPAddr per connection, so a hit
// spares formatting the address on every call. At most maxAddrStrings
// entries: it starts over when full.
type addrCache[V any] struct {
	mu *sync.RWMutex
	m  map[*net.TCPAddr]V // guarded by mu
}

func newAddrCache[V any]() addrCache[V] {
	return addrCache[V]{mu: new(sync.RWMutex), m: map[*net.TCPAddr]V{}}
}

// get returns build(a.String()), cached when a is a *net.TCPAddr.
func (c addrCache[V]) get(a net.Addr, build func(string) V) V {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return build(a.String())
	}
	c.mu.RLock()
	v, ok := c.m[tcp]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build(tcp.String())
	c.mu.Lock()
	if len(c.m) >= maxAddrStrings {
		clear(c.m)
	}
	c.m[tcp] = v
	c.mu.Unlock()
	return v
}

// recordOptions returns the cached options for (m, code, addr).
func (r *rpcMetrics) recordOptions(m *methodMetrics, code codes.Code, addr string) []metric.RecordOption {
	if addr == "" {
		if int(code) < len(m.byCode) {
			if p := m.byCode[code].Load(); p != nil {
				return *p
			}
			opts := r.buildOptions(m, code, "")
			m.byCode[code].Store(&opts)
			return opts
		}
		return r.buildOptions(m, code, "")
	}
	k := addrKey{code, addr}
	m.mu.RLock()
	opts, ok := m.byAddr[k]
	m.mu.RUnlock()
	if ok {
		return opts
	}
	opts = r.buildOptions(m, code, addr)
	m.mu.Lock()
	if len(m.byAddr) < maxAddresses {
		m.byAddr[k] = opts
	}
	m.mu.Unlock()
	return opts
}

// buildOptions builds the attribute set otelgrpc would record: the method
// attributes, server.address and server.port on the client,
// rpc.response.status_code, and error.type for failures (every non-OK code
// on the client; on the server only the codes that are the server's fault).
func (r *rpcMetrics) buildOptions(m *methodMetrics, code codes.Code, addr string) []metric.RecordOption {
	attrs := make([]attribute.KeyValue, 0, len(m.attrs)+5)
	attrs = append(attrs, m.attrs...)
	if addr != "" {
		attrs = append(attrs, serverAddrAttrs(addr)...)
	}
	name := statuscode.Name(code)
	attrs = append(attrs, semconv.RPCResponseStatusCode(name))
	if code != codes.OK && (r.client || isServerError(code)) {
		attrs = append(attrs, semconv.ErrorTypeKey.String(name))
	}
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
}

// isServerError reports whether a server answering code failed (the span
// status rule of otelgrpc's server side).
func isServerError(code codes.Code) bool {
	switch code {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}
