package telemetry

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
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
// exactly as otelgrpc v0.72 does (same instrument, unit, buckets and
// attributes; see TestMetricsMatchOtelgrpc), but with the attribute sets
// cached per method, status code and server address, so that recording a
// call allocates next to nothing. otelgrpc builds and hashes a new attribute
// set on every call.
type rpcMetrics struct {
	client bool
	hist   metric.Float64Histogram

	mu      sync.RWMutex
	methods map[string]*methodMetrics // guarded by mu; at most maxMethods

	addrMu sync.RWMutex
	addrs  map[*net.TCPAddr]string // formatted peer addresses; guarded by addrMu; cleared when it holds maxAddrStrings
}

// maxAddrStrings bounds the cache of formatted peer addresses; a transport
// keeps one *net.TCPAddr per connection, so a hit spares formatting the
// address on every call.
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

// callMetrics is the per-call state of a client call.
type callMetrics struct {
	m    *methodMetrics
	addr string // remote address from OutHeader, "" if the call got none
}

type callMetricsKey struct{}

func newRPCMetrics(mp metric.MeterProvider, client bool) (*rpcMetrics, error) {
	meter := mp.Meter(scopeName, metric.WithSchemaURL(semconv.SchemaURL))
	r := &rpcMetrics{client: client, methods: map[string]*methodMetrics{}, addrs: map[*net.TCPAddr]string{}}
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

func (r *rpcMetrics) method(fullMethod string) *methodMetrics {
	r.mu.RLock()
	m, ok := r.methods[fullMethod]
	r.mu.RUnlock()
	if ok {
		return m
	}
	m = &methodMetrics{byAddr: map[addrKey][]metric.RecordOption{}}
	if name, ok := strings.CutPrefix(fullMethod, "/"); ok {
		m.attrs = append(m.attrs, semconv.RPCMethod(name))
	}
	m.attrs = append(m.attrs, semconv.RPCSystemNameGRPC)
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.methods[fullMethod]; ok {
		return prev
	}
	if len(r.methods) < maxMethods {
		r.methods[fullMethod] = m
	}
	return m
}

func (r *rpcMetrics) tagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	m := r.method(info.FullMethodName)
	if r.client {
		return context.WithValue(ctx, callMetricsKey{}, &callMetrics{m: m})
	}
	return context.WithValue(ctx, callMetricsKey{}, m)
}

func (r *rpcMetrics) handleRPC(ctx context.Context, rs stats.RPCStats) {
	switch rs := rs.(type) {
	case *stats.OutHeader:
		if rs.Client && rs.RemoteAddr != nil {
			if c, ok := ctx.Value(callMetricsKey{}).(*callMetrics); ok {
				c.addr = r.addrString(rs.RemoteAddr)
			}
		}
	case *stats.End:
		var m *methodMetrics
		var addr string
		switch v := ctx.Value(callMetricsKey{}).(type) {
		case *callMetrics:
			m, addr = v.m, v.addr
		case *methodMetrics:
			m = v
		default:
			return
		}
		code := codes.OK
		if rs.Error != nil {
			code = status.Code(rs.Error)
		}
		elapsed := float64(rs.EndTime.Sub(rs.BeginTime)) / 1e9
		r.hist.Record(ctx, elapsed, r.recordOptions(m, code, addr)...)
	}
}

// addrString formats a, from the cache when a is a TCP address seen before.
func (r *rpcMetrics) addrString(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	r.addrMu.RLock()
	s, ok := r.addrs[tcp]
	r.addrMu.RUnlock()
	if ok {
		return s
	}
	s = tcp.String()
	r.addrMu.Lock()
	if len(r.addrs) >= maxAddrStrings {
		clear(r.addrs)
	}
	r.addrs[tcp] = s
	r.addrMu.Unlock()
	return s
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
		if host, port, err := net.SplitHostPort(addr); err != nil {
			attrs = append(attrs, semconv.ServerAddress(addr))
		} else if p, err := strconv.Atoi(port); err != nil {
			attrs = append(attrs, semconv.ServerAddress(host))
		} else {
			attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(p))
		}
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
