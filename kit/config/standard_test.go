package config

import (
	"reflect"
	"testing"
)

// TestEveryStandardSectionValidates: Standard.Validate finds the sections by
// their Validate method, so a section without one would go unchecked.
func TestEveryStandardSectionValidates(t *testing.T) {
	typ := reflect.TypeFor[Standard]()
	validator := reflect.TypeFor[interface{ Validate() error }]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !reflect.PointerTo(f.Type).Implements(validator) {
			t.Errorf("section %s (%s) has no Validate method", f.Name, f.Type)
		}
	}
}

// TestStandardValidateReachesEverySection: an invalid value in each section
// is reported, named by its path.
func TestStandardValidateReachesEverySection(t *testing.T) {
	for _, tc := range []struct {
		path  string
		spoil func(*Standard)
	}{
		{"server.listen", func(s *Standard) { s.Server.Listen = "" }},
		{"registry.weights", func(s *Standard) { s.Registry.Weights.Passing = -1 }},
		{"ratelimit", func(s *Standard) { s.RateLimit.RPS = -1 }},
		{"timeout", func(s *Standard) { s.Timeout.Default = -1 }},
		{"retry", func(s *Standard) { s.Retry.MaxAttempts = -1 }},
		{"breaker", func(s *Standard) { s.Breaker.FailureRatio = 2 }},
		{"window", func(s *Standard) { s.Balancer.Window = -1 }},
		{"log.format", func(s *Standard) { s.Log.Format = "xml" }},
		{"telemetry", func(s *Standard) { s.Telemetry.TracesSampler = "sometimes" }},
	} {
		t.Run(tc.path, func(t *testing.T) {
			s := DefaultStandard()
			s.Telemetry.ServiceName = "svc" // Load fills it with the service's name
			if err := s.Validate(); err != nil {
				t.Fatalf("defaults: %v", err)
			}
			tc.spoil(&s)
			if err := s.Validate(); err == nil {
				t.Errorf("Validate accepted a broken %s", tc.path)
			}
		})
	}
}
