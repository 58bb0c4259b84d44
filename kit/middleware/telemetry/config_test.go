package telemetry

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr []string // substrings of the error, nil for valid
	}{
		{"defaults with name", func(c *Config) { c.ServiceName = "svc" }, nil},
		{"defaults without name", func(*Config) {}, []string{"telemetry: service_name is required"}},
		{"empty sampler uses env", func(c *Config) { c.ServiceName, c.TracesSampler = "svc", "" }, nil},
		{"ratio", func(c *Config) { c.ServiceName, c.TracesSampler = "svc", "traceidratio:0.25" }, nil},
		{"parent ratio", func(c *Config) { c.ServiceName, c.TracesSampler = "svc", "parentbased_traceidratio:1" }, nil},
		{"bad ratio", func(c *Config) { c.ServiceName, c.TracesSampler = "svc", "traceidratio:2" }, []string{"telemetry: traces_sampler"}},
		{"unknown sampler", func(c *Config) { c.ServiceName, c.TracesSampler = "svc", "sometimes" }, []string{"telemetry: traces_sampler"}},
		{"all wrong", func(c *Config) { c.TracesSampler = "sometimes" }, []string{"service_name", "traces_sampler"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestParseSampler(t *testing.T) {
	for _, tc := range []struct {
		name, arg string
		want      string // Sampler.Description(), "" for an error
	}{
		{"always_on", "", "AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"traceidratio", "", "TraceIDRatioBased{1}"},
		{"traceidratio", "0.5", "TraceIDRatioBased{0.5}"},
		{"traceidratio:0.1", "0.5", "TraceIDRatioBased{0.1}"},
		{"parentbased_always_on", "", "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"},
		{"traceidratio:x", "", ""},
		{"traceidratio", "-1", ""},
		{"", "", ""},
	} {
		s, err := parseSampler(tc.name, tc.arg)
		got := ""
		if err == nil {
			got = s.Description()
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseSampler(%q, %q) (-want +got):\n%s", tc.name, tc.arg, diff)
		}
	}
}

func TestTracesExporterName(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ExporterNone},
		{map[string]string{"OTEL_TRACES_EXPORTER": "OTLP"}, ExporterOTLP},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, ExporterConsole},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ExporterOTLP},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ExporterOTLP},
		{map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318"}, ExporterNone},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ExporterNone},
		{map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, ExporterNone},
	} {
		got := tracesExporterName(func(k string) string { return tc.env[k] })
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("env %v (-want +got):\n%s", tc.env, diff)
		}
	}
}

func TestAddrStringCache(t *testing.T) {
	r := &rpcMetrics{addrs: newAddrCache[string]()}
	a := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443}
	if got := r.addrString(a); got != "10.0.0.1:443" {
		t.Fatalf("addrString = %q", got)
	}
	if got := r.addrString(a); got != "10.0.0.1:443" || len(r.addrs.m) != 1 {
		t.Errorf("second lookup = %q with %d cached", got, len(r.addrs.m))
	}
	for i := range maxAddrStrings + 10 {
		r.addrString(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: i + 1})
	}
	if n := len(r.addrs.m); n > maxAddrStrings {
		t.Errorf("cache grew to %d entries, want at most %d", n, maxAddrStrings)
	}
	if got := r.addrString(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}); got != "/tmp/s" {
		t.Errorf("non-TCP address = %q", got)
	}
}
