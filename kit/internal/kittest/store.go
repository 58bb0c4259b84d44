package kittest

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// Store is an in-memory store of items by key that counts its writes, for
// tests that prove a write happened once (a retried Create that the dedupe
// layer replays, say). The zero value is an empty store. It is safe for
// concurrent use; the items it returns are copies.
type Store struct {
	mu     sync.Mutex
	items  map[string]*testpbv1.Item // guarded by mu
	keys   []string                  // guarded by mu; in creation order
	writes int                       // guarded by mu
}

// Create stores a new item of version 1 with a fresh id under key. It
// fails with AlreadyExists when key is taken, and then writes nothing.
func (s *Store) Create(key, value string) (*testpbv1.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[key]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "kittest: key %q exists", key)
	}
	return s.createLocked(key, value), nil
}

// Put stores value under key: it replaces the value of an item and
// increments its version, or creates the item as [Store.Create] does.
func (s *Store) Put(key, value string) *testpbv1.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return s.createLocked(key, value)
	}
	it.Value = value
	it.Version++
	s.writes++
	return proto.CloneOf(it)
}

func (s *Store) createLocked(key, value string) *testpbv1.Item {
	if s.items == nil {
		s.items = make(map[string]*testpbv1.Item)
	}
	s.writes++
	it := &testpbv1.Item{Key: key, Value: value, Id: fmt.Sprintf("item-%d", len(s.keys)+1), Version: 1}
	s.items[key] = it
	s.keys = append(s.keys, key)
	return proto.CloneOf(it)
}

// Items returns the stored items in creation order.
func (s *Store) Items() []*testpbv1.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*testpbv1.Item, len(s.keys))
	for i, k := range s.keys {
		out[i] = proto.CloneOf(s.items[k])
	}
	return out
}

// Writes returns the number of writes made: successful Creates and Puts.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}
