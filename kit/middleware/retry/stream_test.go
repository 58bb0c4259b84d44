package retry_test

import (
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// receiveAll receives until the end of stream and returns the messages.
func receiveAll(stream grpc.ServerStreamingClient[greeterv1.StreamHellosResponse]) ([]string, error) {
	var got []string
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, m.GetMessage())
	}
}

// sendOneThenFail is a stream server interceptor that sends one message and
// fails with UNAVAILABLE, on every stream.
func sendOneThenFail(_ any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, _ grpc.StreamHandler) error {
	if err := ss.SendMsg(&greeterv1.StreamHellosResponse{Message: "first", Sequence: 1}); err != nil {
		return err
	}
	return errUnavailable
}

func TestStreamRetry(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fail         func(int64) error
		afterFirst   bool // the server fails after sending one message
		wantMessages []string
		wantCode     codes.Code
		wantAttempts []string
	}{
		{
			name:         "retried before the first message",
			fail:         firstN(2, errUnavailable),
			wantMessages: []string{"Hello, Ada! (1/2)", "Hello, Ada! (2/2)"},
			wantCode:     codes.OK,
			wantAttempts: []string{"", "2", "3"},
		},
		{
			name:         "gives up at max attempts",
			fail:         always(errUnavailable),
			wantCode:     codes.Unavailable,
			wantAttempts: []string{"", "2", "3"},
		},
		{
			name:         "not retried on other codes",
			fail:         always(status.Error(codes.PermissionDenied, "test: no")),
			wantCode:     codes.PermissionDenied,
			wantAttempts: []string{""},
		},
		{
			name:         "not retried after the first message",
			afterFirst:   true,
			wantMessages: []string{"first"},
			wantCode:     codes.Unavailable,
			wantAttempts: []string{""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faults{fail: tc.fail}
			chain := []grpc.StreamServerInterceptor{f.stream}
			if tc.afterFirst {
				chain = append(chain, sendOneThenFail)
			}
			lis := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
				grpc.ChainStreamInterceptor(chain...))
			r := newRetrier(t, fastConfig())
			c := greeterv1.NewGreeterServiceClient(dial(t, lis, "greeter", grpc.WithStreamInterceptor(r.StreamClientInterceptor())))
			stream, err := c.StreamHellos(t.Context(), &greeterv1.StreamHellosRequest{Name: "Ada", Count: 2})
			if err != nil {
				t.Fatalf("StreamHellos: %v", err)
			}
			got, err := receiveAll(stream)
			if status.Code(err) != tc.wantCode {
				t.Errorf("stream error = %v, want code %v", err, tc.wantCode)
			}
			if diff := cmp.Diff(tc.wantMessages, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAttempts, f.seenAttempts()); diff != "" {
				t.Errorf("attempt metadata per stream (-want +got):\n%s", diff)
			}
		})
	}
}
