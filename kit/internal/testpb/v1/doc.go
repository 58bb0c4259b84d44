// Package testpbv1 is the generated code of the kit's test proto,
// testpb/v1/test.proto (package testpb.v1): a TestService with unary and
// server-streaming methods of every idempotency level the middleware tells
// apart. Only the kit's tests use it; [github.com/grpckit/grpckit/kit/internal/kittest]
// implements the service. Regenerate with `make generate`.
package testpbv1
