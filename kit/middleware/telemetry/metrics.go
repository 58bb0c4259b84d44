package telemetry

import (
	"context"
	"errors"
	"math"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/cowmap"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// scopeName is the instrumentation scope of the RPC metrics.
const scopeName = "github.com/grpckit/grpckit/kit/middleware/telemetry"

// Cache bounds: method names come from the wire on the server (a client may
// call any name), addresses from the endpoints a client reaches. Past the
// bound the histogram is looked up by its attribute set, built per call.
const (
	maxMethods   = 1024
	maxAddresses = 256 // per method
)

// bucketBounds are otelgrpc's bucket boundaries, in seconds.
var bucketBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

var durationBuckets = bucketBounds[:]

// rpcMetrics records rpc.server.call.duration or rpc.client.call.duration
// with the name, description, unit, buckets and attributes otelgrpc v0.72
// gives the instrument (see TestMetricsMatchOtelgrpc), from kit's
// interceptors rather than a stats handler, into histograms of its own: one
// per attribute set, made once per method, status code and server address,
// updated with atomic adds. The metric reader collects them through
// [rpcProducer]. Recording a call this way allocates nothing and costs a
// few atomic operations, where a synchronous OTel instrument (or otelgrpc,
// which also builds and hashes a new attribute set per call) normalizes and
// hashes the attribute set on every call.
type rpcMetrics struct {
	client      bool
	name        string
	description string
	unit        string
	start       time.Time // start of the cumulative counts

	methods cowmap.Map[*methodMetrics] // at most maxMethods
	addrs   addrCache[string]          // formatted peer addresses

	mu     sync.Mutex
	series []*histogram                      // every histogram, in order made; guarded by mu
	bySet  map[attribute.Distinct]*histogram // every histogram; guarded by mu; at most maxSeries
}

// maxAddrStrings bounds the caches of formatted peer addresses.
const maxAddrStrings = 256

// maxSeries bounds the histograms of one instrument: calls of further
// attribute sets are counted in one with otel.metric.overflow=true, as the
// OTel SDK does past its default cardinality limit.
const maxSeries = 2000

// methodMetrics holds the histograms of one method.
type methodMetrics struct {
	attrs  []attribute.KeyValue // rpc.method when well formed, rpc.system.name
	byCode [codes.Unauthenticated + 1]atomic.Pointer[histogram]

	mu     sync.RWMutex
	byAddr map[addrKey]*histogram // guarded by mu; at most maxAddresses
}

type addrKey struct {
	code codes.Code
	addr string
}

func newRPCMetrics(client bool) *rpcMetrics {
	r := &rpcMetrics{client: client, addrs: newAddrCache[string](), start: time.Now(), bySet: map[attribute.Distinct]*histogram{}}
	if client {
		var d rpcconv.ClientCallDuration
		r.name, r.description, r.unit = d.Name(), d.Description(), d.Unit()
	} else {
		var d rpcconv.ServerCallDuration
		r.name, r.description, r.unit = d.Name(), d.Description(), d.Unit()
	}
	return r
}

// otherMethod is the rpc.method of calls to methods the server does not
// have (OpenTelemetry's "_OTHER"): their names are the caller's choice and
// would make a series each.
const otherMethod = "_OTHER"

// method returns the metrics of fullMethod.
func (r *rpcMetrics) method(fullMethod string) *methodMetrics {
	if fullMethod == otherMethod {
		return r.methods.LoadOrBuild(fullMethod, maxMethods, func() *methodMetrics {
			return &methodMetrics{attrs: []attribute.KeyValue{semconv.RPCMethod(otherMethod), semconv.RPCSystemNameGRPC}, byAddr: map[addrKey]*histogram{}}
		})
	}
	return r.methods.LoadOrBuild(fullMethod, maxMethods, func() *methodMetrics {
		_, attrs := methodAttributes(fullMethod)
		return &methodMetrics{attrs: attrs, byAddr: map[addrKey]*histogram{}}
	})
}

// methodAttributes returns the span name of fullMethod and the attributes
// its metrics and spans start with, as otelgrpc derives them: rpc.method
// when the name is well formed ("/pkg.Service/Method"), rpc.system.name.
func methodAttributes(fullMethod string) (string, []attribute.KeyValue) {
	name, ok := strings.CutPrefix(fullMethod, "/")
	if !ok {
		return fullMethod, []attribute.KeyValue{semconv.RPCSystemNameGRPC}
	}
	return name, []attribute.KeyValue{semconv.RPCMethod(name), semconv.RPCSystemNameGRPC}
}

// record records one call of m that began at start and ended with err, on
// the client against the server at addr (nil when the call reached none).
func (r *rpcMetrics) record(m *methodMetrics, start time.Time, err error, addr net.Addr) {
	elapsed := float64(time.Since(start)) / 1e9
	var a string
	if addr != nil {
		a = r.addrString(addr)
	}
	r.histogram(m, codeOf(err), a).observe(elapsed)
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
// by address: a transport keeps one *net.TCPAddr (or *net.UnixAddr) per
// connection, so a hit spares formatting the address on every call. At
// most maxAddrStrings entries: it starts over when full.
type addrCache[V any] struct {
	mu *sync.RWMutex
	m  map[net.Addr]V // *net.TCPAddr and *net.UnixAddr keys only; guarded by mu
}

func newAddrCache[V any]() addrCache[V] {
	return addrCache[V]{mu: new(sync.RWMutex), m: map[net.Addr]V{}}
}

// get returns build(a.String()), cached when a is a *net.TCPAddr or a
// *net.UnixAddr (other types may not be comparable, or not be per
// connection).
func (c addrCache[V]) get(a net.Addr, build func(string) V) V {
	switch a.(type) {
	case *net.TCPAddr, *net.UnixAddr:
	default:
		return build(a.String())
	}
	c.mu.RLock()
	v, ok := c.m[a]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build(a.String())
	c.mu.Lock()
	if len(c.m) >= maxAddrStrings {
		clear(c.m)
	}
	c.m[a] = v
	c.mu.Unlock()
	return v
}

// histogram returns the histogram of (m, code, addr), made on first use.
func (r *rpcMetrics) histogram(m *methodMetrics, code codes.Code, addr string) *histogram {
	if addr == "" {
		if int(code) < len(m.byCode) {
			if h := m.byCode[code].Load(); h != nil {
				return h
			}
			h := r.add(r.attributes(m, code, ""))
			if !m.byCode[code].CompareAndSwap(nil, h) {
				return m.byCode[code].Load() // another call made it first: h is the same series
			}
			return h
		}
		return r.add(r.attributes(m, code, ""))
	}
	k := addrKey{code, addr}
	m.mu.RLock()
	h, ok := m.byAddr[k]
	m.mu.RUnlock()
	if ok {
		return h
	}
	h = r.add(r.attributes(m, code, addr))
	m.mu.Lock()
	if prev, ok := m.byAddr[k]; ok {
		h = prev
	} else if len(m.byAddr) < maxAddresses {
		m.byAddr[k] = h
	}
	m.mu.Unlock()
	return h
}

// add returns the histogram of attrs, the one already made for the same
// set when there is one.
func (r *rpcMetrics) add(attrs attribute.Set) *histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.bySet[attrs.Equivalent()]; ok {
		return h
	}
	if len(r.bySet) >= maxSeries {
		attrs = attribute.NewSet(attribute.Bool("otel.metric.overflow", true))
		if h, ok := r.bySet[attrs.Equivalent()]; ok {
			return h
		}
	}
	h := &histogram{attrs: attrs}
	h.min.Store(math.Float64bits(math.Inf(1)))
	h.max.Store(math.Float64bits(math.Inf(-1)))
	r.bySet[attrs.Equivalent()] = h
	r.series = append(r.series, h)
	return h
}

// calls returns the calls counted by every histogram of r.
func (r *rpcMetrics) calls() uint64 {
	r.mu.Lock()
	series := r.series[:len(r.series):len(r.series)]
	r.mu.Unlock()
	var n uint64
	for _, h := range series {
		for i := range h.buckets {
			n += h.buckets[i].Load()
		}
	}
	return n
}

// attributes builds the attribute set otelgrpc would record: the method
// attributes, server.address and server.port on the client,
// rpc.response.status_code, and error.type for failures (every non-OK code
// on the client; on the server only the codes that are the server's fault).
func (r *rpcMetrics) attributes(m *methodMetrics, code codes.Code, addr string) attribute.Set {
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
	return attribute.NewSet(attrs...)
}

// collect returns the metric of r's histograms, false when none has been
// made yet (an instrument that recorded nothing is not exported).
func (r *rpcMetrics) collect(now time.Time) (metricdata.Metrics, bool) {
	r.mu.Lock()
	series := slices.Clone(r.series)
	r.mu.Unlock()
	if len(series) == 0 {
		return metricdata.Metrics{}, false
	}
	points := make([]metricdata.HistogramDataPoint[float64], 0, len(series))
	for _, h := range series {
		if p, ok := h.point(r.start, now); ok {
			points = append(points, p)
		}
	}
	return metricdata.Metrics{
		Name:        r.name,
		Description: r.description,
		Unit:        r.unit,
		Data:        metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points},
	}, true
}

// histogram is a cumulative explicit-bucket histogram over durationBuckets
// (a value falls in the first bucket whose bound it does not exceed), safe
// for concurrent use without a lock.
type histogram struct {
	attrs    attribute.Set
	buckets  [len(bucketBounds) + 1]atomic.Uint64
	sum      atomic.Uint64 // float64 bits
	min, max atomic.Uint64 // float64 bits
}

func (h *histogram) observe(v float64) {
	h.buckets[sort.SearchFloat64s(bucketBounds[:], v)].Add(1)
	addFloat(&h.sum, v)
	for old := h.min.Load(); v < math.Float64frombits(old) && !h.min.CompareAndSwap(old, math.Float64bits(v)); old = h.min.Load() {
	}
	for old := h.max.Load(); v > math.Float64frombits(old) && !h.max.CompareAndSwap(old, math.Float64bits(v)); old = h.max.Load() {
	}
}

// point reads h as a data point; false when it has counted nothing. The
// count is the sum of the buckets read, so that the two agree.
func (h *histogram) point(start, now time.Time) (metricdata.HistogramDataPoint[float64], bool) {
	counts := make([]uint64, len(h.buckets))
	var n uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return metricdata.HistogramDataPoint[float64]{}, false
	}
	return metricdata.HistogramDataPoint[float64]{
		Attributes:   h.attrs,
		StartTime:    start,
		Time:         now,
		Count:        n,
		Bounds:       slices.Clone(durationBuckets),
		BucketCounts: counts,
		Min:          metricdata.NewExtrema(math.Float64frombits(h.min.Load())),
		Max:          metricdata.NewExtrema(math.Float64frombits(h.max.Load())),
		Sum:          math.Float64frombits(h.sum.Load()),
	}, true
}

// addFloat adds v to the float64 whose bits a holds.
func addFloat(a *atomic.Uint64, v float64) {
	for {
		old := a.Load()
		if a.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// rpcProducer hands the RPC histograms of a Telemetry to its metric reader
// (a metric.Producer), under this package's instrumentation scope.
type rpcProducer struct {
	metrics []*rpcMetrics
}

var _ sdkmetric.Producer = (*rpcProducer)(nil)

func (p *rpcProducer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	now := time.Now()
	sm := metricdata.ScopeMetrics{Scope: instrumentation.Scope{Name: scopeName, SchemaURL: semconv.SchemaURL}}
	for _, r := range p.metrics {
		if m, ok := r.collect(now); ok {
			sm.Metrics = append(sm.Metrics, m)
		}
	}
	if len(sm.Metrics) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{sm}, nil
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
