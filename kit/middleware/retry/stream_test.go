package retry_test

import (
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// receiveAll receives until the end of stream and returns the sequences of
// the messages.
func receiveAll(stream grpc.ServerStreamingClient[testpbv1.EchoStreamResponse]) ([]int32, error) {
	var got []int32
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, m.GetSequence())
	}
}

func TestStreamRetry(t *testing.T) {
	for _, tc := range []struct {
		name         string
		failures     int   // streams the server fails, -1: all
		err          error // what they fail with
		faultAfter   int32 // messages a stream sends before it fails
		wantMessages []int32
		wantCode     codes.Code
		wantAttempts []string
	}{
		{
			name:         "retried before the first message",
			failures:     2,
			err:          errUnavailable,
			wantMessages: []int32{1, 2},
			wantCode:     codes.OK,
			wantAttempts: []string{"", "2", "3"},
		},
		{
			name:         "gives up at max attempts",
			failures:     -1,
			err:          errUnavailable,
			wantCode:     codes.Unavailable,
			wantAttempts: []string{"", "2", "3"},
		},
		{
			name:         "not retried on other codes",
			failures:     -1,
			err:          status.Error(codes.PermissionDenied, "test: no"),
			wantCode:     codes.PermissionDenied,
			wantAttempts: []string{""},
		},
		{
			name:         "not retried after the first message",
			failures:     -1,
			err:          errUnavailable,
			faultAfter:   1,
			wantMessages: []int32{1},
			wantCode:     codes.Unavailable,
			wantAttempts: []string{""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &kittest.Service{}
			svc.FailNext(tc.failures, tc.err)
			r := newRetrier(t, fastConfig())
			conn := kittest.StartServer(t, svc.Register).Dial(t, "test", grpc.WithStreamInterceptor(r.StreamClientInterceptor()))
			stream, err := testpbv1.NewTestServiceClient(conn).EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "Ada", Count: 2, FaultAfter: tc.faultAfter})
			if err != nil {
				t.Fatalf("EchoStream: %v", err)
			}
			got, err := receiveAll(stream)
			if status.Code(err) != tc.wantCode {
				t.Errorf("stream error = %v, want code %v", err, tc.wantCode)
			}
			if diff := cmp.Diff(tc.wantMessages, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAttempts, attempts(svc)); diff != "" {
				t.Errorf("attempt metadata per stream (-want +got):\n%s", diff)
			}
		})
	}
}
