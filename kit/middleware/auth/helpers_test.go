package auth

import (
	"context"
	"reflect"

	"google.golang.org/grpc/metadata"
)

// metadataContext returns ctx with the outgoing authorization metadata h.
func metadataContext(ctx context.Context, h string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", h)
}

// reflectField returns the struct field name of v.
func reflectField(v any, name string) (reflect.StructField, bool) {
	return reflect.TypeOf(v).FieldByName(name)
}
