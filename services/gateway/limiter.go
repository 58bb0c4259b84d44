package gateway

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
)

// Which bucket refused a request, as reported in logs and metrics.
const (
	scopeClient = "client"
	scopeGlobal = "global"
)

// edgeLimiter holds the global token bucket and one bucket per client IP,
// the least recently seen clients' buckets dropped beyond Limits.MaxClients.
// Every time is passed in, so tests drive it with their own clock. It is
// safe for concurrent use.
type edgeLimiter struct {
	mu      sync.Mutex
	limits  Limits                   // guarded by mu
	global  *rate.Limiter            // guarded by mu; nil when the global limit is off
	clients map[string]*list.Element // guarded by mu; values of lru
	lru     list.List                // guarded by mu; of *clientBucket, most recently seen first
}

type clientBucket struct {
	ip     string
	bucket *rate.Limiter
}

func newEdgeLimiter(limits Limits, now time.Time) *edgeLimiter {
	l := &edgeLimiter{}
	l.set(limits, now)
	return l
}

// set changes the limits at now. Existing buckets keep their tokens; a limit
// turned off drops its buckets, and one turned on starts full.
func (l *edgeLimiter) set(limits Limits, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = limits
	switch {
	case !enabled(limits.Global):
		l.global = nil
	case l.global == nil:
		l.global = newBucket(limits.Global)
	default:
		update(l.global, limits.Global, now)
	}
	if !enabled(limits.PerClient) {
		l.clients = nil
		l.lru.Init()
		return
	}
	for e := l.lru.Front(); e != nil; e = e.Next() {
		update(e.Value.(*clientBucket).bucket, limits.PerClient, now)
	}
	l.trimLocked()
}

// allow takes a token for a request of client at now from the client's
// bucket and the global one. When either has none it takes nothing and
// returns the scope of the refusing bucket and how long until it has a
// token again.
func (l *edgeLimiter) allow(client string, now time.Time) (ok bool, scope string, retryAfter time.Duration) {
	global, perClient := l.buckets(client)
	var rc *rate.Reservation
	if perClient != nil {
		rc = perClient.ReserveN(now, 1)
		if d := delay(rc, now); d > 0 {
			return false, scopeClient, d
		}
	}
	if global != nil {
		rg := global.ReserveN(now, 1)
		if d := delay(rg, now); d > 0 {
			if rc != nil {
				rc.CancelAt(now) // give the client's token back
			}
			return false, scopeGlobal, d
		}
	}
	return true, "", 0
}

// delay returns how long r waits for its token, cancelling r when it must
// wait: the gateway never queues requests.
func delay(r *rate.Reservation, now time.Time) time.Duration {
	if !r.OK() { // cannot happen with a burst of at least 1
		return time.Second
	}
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
	}
	return d
}

// buckets returns the global bucket and client's bucket (created full on
// first use); each is nil when its limit is off.
func (l *edgeLimiter) buckets(client string) (global, perClient *rate.Limiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !enabled(l.limits.PerClient) {
		return l.global, nil
	}
	if e, ok := l.clients[client]; ok {
		l.lru.MoveToFront(e)
		return l.global, e.Value.(*clientBucket).bucket
	}
	if l.clients == nil {
		l.clients = make(map[string]*list.Element)
	}
	cb := &clientBucket{ip: client, bucket: newBucket(l.limits.PerClient)}
	l.clients[client] = l.lru.PushFront(cb)
	l.trimLocked()
	return l.global, cb.bucket
}

// trimLocked drops the least recently seen clients beyond MaxClients.
func (l *edgeLimiter) trimLocked() {
	for l.lru.Len() > max(l.limits.MaxClients, 1) {
		e := l.lru.Back()
		l.lru.Remove(e)
		delete(l.clients, e.Value.(*clientBucket).ip)
	}
}

// numClients returns the number of client buckets kept.
func (l *edgeLimiter) numClients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// enabled reports whether lim limits anything (rps 0 means no limit).
func enabled(lim ratelimit.Limit) bool { return lim.RPS > 0 }

// burst returns the bucket size of lim: Burst, or RPS rounded up and at
// least 1 when Burst is 0, as in kit/middleware/ratelimit.
func burst(lim ratelimit.Limit) int {
	if lim.Burst > 0 {
		return lim.Burst
	}
	return int(math.Max(1, math.Ceil(lim.RPS)))
}

// newBucket returns a full bucket for lim.
func newBucket(lim ratelimit.Limit) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(lim.RPS), burst(lim))
}

// update changes b to lim at now, keeping its tokens.
func update(b *rate.Limiter, lim ratelimit.Limit, now time.Time) {
	b.SetLimitAt(now, rate.Limit(lim.RPS))
	b.SetBurstAt(now, burst(lim))
}

// clientIP returns the client the per-client limit applies to: the peer
// address of the connection, or with trustForwardedFor the last valid
// address of the last X-Forwarded-For header (the one the trusted proxy
// appended; a port after it is ignored), keyed by [middleware.AddrKey]: an
// IPv6 client counts by its /64.
func clientIP(r *http.Request, trustForwardedFor bool) string {
	if trustForwardedFor {
		if hs := r.Header.Values("X-Forwarded-For"); len(hs) > 0 {
			last := hs[len(hs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			last = strings.TrimSpace(last)
			if ip, err := netip.ParseAddr(last); err == nil {
				return middleware.AddrKey(ip)
			}
			if ap, err := netip.ParseAddrPort(last); err == nil {
				return middleware.AddrKey(ap.Addr())
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == "" { // "[]:80" splits into an empty host: keep the whole address as the key
		host = r.RemoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return middleware.AddrKey(ip)
	}
	return host
}
