package kittest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// maxCount is the largest count EchoStream accepts.
const maxCount = 100

// Service implements the kit's test service, testpb.v1.TestService. It
// answers as the proto documents, records every call (its count and
// incoming metadata) and applies the faults the test sets: [Service.Fail],
// [Service.FailNext], [Service.Block], [Service.PanicNext], [Service.Slow]. A unary call
// validates its request, then meets the faults, then answers; a stream
// validates its request, sends the fault_after messages its request asks
// for (none by default), then meets the faults, then sends the rest. When
// several faults are set, a panic comes first, then blocking, then
// slowness, then failing.
//
// The zero value answers Echo and EchoStream (Put and Create need a
// Store); set the exported fields before the service serves. The methods
// are safe for concurrent use.
type Service struct {
	testpbv1.UnimplementedTestServiceServer

	// Name is returned in the server field of every response.
	Name string
	// Next, when not nil, answers Echo: the service passes each Echo call
	// on to Next with its incoming context, as a kit handler that calls
	// another service does, and returns Next's answer.
	Next testpbv1.TestServiceClient
	// Store keeps what Put and Create write; when nil, they fail with
	// FailedPrecondition.
	Store *Store

	calls atomic.Int64

	mu       sync.Mutex
	err      error         // guarded by mu; the error failing calls return
	failures int           // guarded by mu; calls left to fail with err, negative: every call
	block    bool          // guarded by mu
	panics   []any         // guarded by mu; the values the next calls panic with
	metadata []metadata.MD // guarded by mu; of every call, in arrival order
	blocked  chan string   // guarded by mu; made on first use
	delay    time.Duration // guarded by mu; see Slow
	every    int64         // guarded by mu; see Slow
	slowSeq  int64         // guarded by mu; calls met by Slow's rule
}

var _ testpbv1.TestServiceServer = (*Service)(nil)

// Register registers s on r, as testpbv1.RegisterTestServiceServer does;
// it fits [Serve] and [StartServer].
func (s *Service) Register(r grpc.ServiceRegistrar) {
	testpbv1.RegisterTestServiceServer(r, s)
}

// Calls returns the number of calls that reached the service, failed ones
// included.
func (s *Service) Calls() int { return int(s.calls.Load()) }

// Metadata returns the incoming metadata of every call that reached the
// service, in arrival order.
func (s *Service) Metadata() []metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metadata.MD, len(s.metadata))
	for i, md := range s.metadata {
		out[i] = md.Copy()
	}
	return out
}

// Fail makes every call fail with err (a status error, so that the client
// sees its code) until the next Fail or FailNext; Fail(nil) ends it.
func (s *Service) Fail(err error) { s.FailNext(-1, err) }

// FailNext makes the next n calls fail with err, and the calls after them
// succeed; a negative n is [Service.Fail].
func (s *Service) FailNext(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err, s.failures = err, n
	if err == nil {
		s.failures = 0
	}
}

// Block makes the calls that start from now on wait until their context
// ends and then fail with its status (true), or answer (false). A call
// that waits already keeps waiting.
func (s *Service) Block(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.block = on
}

// Blocked returns a channel that receives the full method name of each
// call when it starts waiting under [Service.Block]. It holds 100 names; a
// call waits for room, or for its context to end.
func (s *Service) Blocked() <-chan string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blockedLocked()
}

func (s *Service) blockedLocked() chan string {
	if s.blocked == nil {
		s.blocked = make(chan string, 100)
	}
	return s.blocked
}

// Slow makes every n-th call from now on (every call when n <= 1) wait d
// before it goes on, or until its context ends (then it fails with the
// context's status), as a slow replica does; Slow(0, 0) ends it.
func (s *Service) Slow(d time.Duration, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay, s.every, s.slowSeq = d, int64(max(n, 1)), 0
}

// PanicNext makes the next call panic with v, in the handler's goroutine,
// as a handler with a bug does. Calls to PanicNext queue up: each one
// makes one call panic.
func (s *Service) PanicNext(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.panics = append(s.panics, v)
}

// record counts the call and keeps its metadata.
func (s *Service) record(ctx context.Context) {
	s.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.metadata = append(s.metadata, md.Copy())
	s.mu.Unlock()
}

// fault applies the faults set on s to the call of method.
func (s *Service) fault(ctx context.Context, method string) error {
	s.mu.Lock()
	if len(s.panics) > 0 {
		v := s.panics[0]
		s.panics = s.panics[1:]
		s.mu.Unlock()
		panic(v)
	}
	if s.block {
		blocked := s.blockedLocked()
		s.mu.Unlock()
		select {
		case blocked <- method:
		case <-ctx.Done():
		}
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	if s.delay > 0 {
		s.slowSeq++
		if d := s.delay; s.slowSeq%s.every == 0 {
			s.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return status.FromContextError(ctx.Err()).Err()
			}
			s.mu.Lock()
		}
	}
	defer s.mu.Unlock()
	if s.failures == 0 {
		return nil
	}
	if s.failures > 0 {
		s.failures--
	}
	return s.err
}

// Echo answers with the request's message, or relays the call to Next.
func (s *Service) Echo(ctx context.Context, req *testpbv1.EchoRequest) (*testpbv1.EchoResponse, error) {
	s.record(ctx)
	if req.GetMessage() == "" {
		return nil, status.Error(codes.InvalidArgument, "message is required")
	}
	if err := s.fault(ctx, testpbv1.TestService_Echo_FullMethodName); err != nil {
		return nil, err
	}
	if s.Next != nil {
		return s.Next.Echo(ctx, req)
	}
	return &testpbv1.EchoResponse{Message: req.GetMessage(), Server: s.Name}, nil
}

// EchoStream sends count messages (1 when count is 0), meeting the faults
// after fault_after of them.
func (s *Service) EchoStream(req *testpbv1.EchoStreamRequest, stream grpc.ServerStreamingServer[testpbv1.EchoStreamResponse]) error {
	ctx := stream.Context()
	s.record(ctx)
	if req.GetMessage() == "" {
		return status.Error(codes.InvalidArgument, "message is required")
	}
	n := req.GetCount()
	if n < 0 || n > maxCount {
		return status.Errorf(codes.InvalidArgument, "count %d is not within 0 to %d", n, maxCount)
	}
	n = max(n, 1)
	after := req.GetFaultAfter()
	if after < 0 || after > n {
		return status.Errorf(codes.InvalidArgument, "fault_after %d is not within 0 to %d", after, n)
	}
	for i := int32(0); ; i++ { // i messages sent
		if i == after {
			if err := s.fault(ctx, testpbv1.TestService_EchoStream_FullMethodName); err != nil {
				return err
			}
		}
		if i == n {
			return nil
		}
		if err := stream.Send(&testpbv1.EchoStreamResponse{Message: req.GetMessage(), Sequence: i + 1, Server: s.Name}); err != nil {
			return err
		}
	}
}

// Put stores the item in Store.
func (s *Service) Put(ctx context.Context, req *testpbv1.PutRequest) (*testpbv1.PutResponse, error) {
	s.record(ctx)
	if err := s.writable(ctx, req.GetKey(), testpbv1.TestService_Put_FullMethodName); err != nil {
		return nil, err
	}
	return &testpbv1.PutResponse{Item: s.Store.Put(req.GetKey(), req.GetValue())}, nil
}

// Create creates the item in Store.
func (s *Service) Create(ctx context.Context, req *testpbv1.CreateRequest) (*testpbv1.CreateResponse, error) {
	s.record(ctx)
	if err := s.writable(ctx, req.GetKey(), testpbv1.TestService_Create_FullMethodName); err != nil {
		return nil, err
	}
	it, err := s.Store.Create(req.GetKey(), req.GetValue())
	if err != nil {
		return nil, err
	}
	return &testpbv1.CreateResponse{Item: it}, nil
}

// writable validates key, applies the faults and checks that s has a store.
func (s *Service) writable(ctx context.Context, key, method string) error {
	if key == "" {
		return status.Error(codes.InvalidArgument, "key is required")
	}
	if err := s.fault(ctx, method); err != nil {
		return err
	}
	if s.Store == nil {
		return status.Error(codes.FailedPrecondition, "kittest: the service has no Store")
	}
	return nil
}
