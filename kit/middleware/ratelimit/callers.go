package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// callerBuckets holds a token bucket per caller, the least recently used
// dropped beyond max. Safe for concurrent use.
type callerBuckets struct {
	mu    sync.Mutex
	limit Limit                    // guarded by mu; not enabled: no buckets
	max   int                      // guarded by mu
	byID  map[string]*list.Element // guarded by mu; values of lru
	lru   list.List                // guarded by mu; of *callerBucket, most recent first
}

type callerBucket struct {
	id     string
	bucket *rate.Limiter
}

// get returns the bucket of caller id, creating it (full) on first use, or
// nil when callers are not limited.
func (c *callerBuckets) get(id string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.limit.enabled() {
		return nil
	}
	if e, ok := c.byID[id]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*callerBucket).bucket
	}
	if c.byID == nil {
		c.byID = make(map[string]*list.Element)
	}
	cb := &callerBucket{id: id, bucket: c.limit.newBucket()}
	c.byID[id] = c.lru.PushFront(cb)
	c.trimLocked()
	return cb.bucket
}

// set changes the limit of every bucket at now, keeping their tokens, and
// the number of buckets kept. A limit that is not enabled drops them all.
func (c *callerBuckets) set(limit Limit, max int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit, c.max = limit, max
	if !limit.enabled() {
		c.byID = nil
		c.lru.Init()
		return
	}
	for e := c.lru.Front(); e != nil; e = e.Next() {
		update(e.Value.(*callerBucket).bucket, limit, now)
	}
	c.trimLocked()
}

// len returns the number of buckets kept.
func (c *callerBuckets) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *callerBuckets) trimLocked() {
	for c.lru.Len() > c.max {
		e := c.lru.Back()
		c.lru.Remove(e)
		delete(c.byID, e.Value.(*callerBucket).id)
	}
}

// update changes b to limit l at now, keeping its tokens.
func update(b *rate.Limiter, l Limit, now time.Time) {
	if b.Limit() != rate.Limit(l.RPS) {
		b.SetLimitAt(now, rate.Limit(l.RPS))
	}
	if b.Burst() != l.burst() {
		b.SetBurstAt(now, l.burst())
	}
}
