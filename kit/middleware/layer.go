package middleware

import "google.golang.org/grpc"

// ServerLayer is the server side of a middleware layer: the interceptors it
// adds to a server's chain. Either method may return nil when the layer has
// nothing to do for that kind of call (dedupe does not touch streams); both
// are called once, when the chain is built, and the interceptors they return
// are called concurrently for every call.
type ServerLayer interface {
	UnaryServerInterceptor() grpc.UnaryServerInterceptor
	StreamServerInterceptor() grpc.StreamServerInterceptor
}

// ClientLayer is the client side of a middleware layer, with the same
// contract as [ServerLayer].
type ClientLayer interface {
	UnaryClientInterceptor() grpc.UnaryClientInterceptor
	StreamClientInterceptor() grpc.StreamClientInterceptor
}

// Configurable is a layer whose configuration changes at run time.
// SetConfig validates c as a whole and either applies all of it or returns
// an error and keeps the configuration in force; it is safe to call
// concurrently with calls going through the layer. Config returns the
// configuration in force.
type Configurable[C any] interface {
	Config() C
	SetConfig(c C) error
}
