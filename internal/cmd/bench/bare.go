package main

import greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"

// request is the 1-byte payload of every measured call.
var request = &greeterv1.SayHelloRequest{Name: "x"}

// bare is grpc-go with nothing added: the baseline of every ratio.
func bare() (caller, func(), error) { return pair(nil, nil) }
