// Package internal holds the test hooks of package consul. Tests set them
// and restore them with t.Cleanup; the registry only reads them.
package internal

import "github.com/grpckit/grpckit/kit/internal/consulq"

// Sleep is how the watch loop and the registration keeper wait between two
// queries (rate limit and backoff): consulq.Sleep, which returns ctx's
// error when ctx is done first. Tests record the pauses and skip them.
var Sleep = consulq.Sleep
