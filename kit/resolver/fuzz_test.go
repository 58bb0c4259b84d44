package resolver

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParseTarget: no target string may panic the parser; an accepted
// target names a service without a slash, and its datacenters (the local
// one, then the failover list) are non-empty and distinct.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"consul:///user", "consul://h:1/user?tag=a&dc=b", "consul:///", "consul:user", "consul:///a?tag=%zz",
		"consul:///user?failover=dc2,dc3", "consul:///user?dc=dc2&failover=dc1", "consul:///user?dc=a&failover=b,a",
		"consul:///user?failover=,", "consul:///user?failover=dc2,dc2", "consul:///user?dc=&failover=local",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		tgt, err := ParseTarget(*u)
		if err != nil {
			return
		}
		if tgt.Service == "" || strings.Contains(tgt.Service, "/") {
			t.Errorf("ParseTarget(%q) accepted service %q", s, tgt.Service)
		}
		dcs := tgt.Datacenters()
		sorted := slices.Compact(slices.Sorted(slices.Values(dcs)))
		if len(sorted) != len(dcs) || slices.Contains(dcs, "") || len(dcs) != 1+len(tgt.Failover) {
			t.Errorf("ParseTarget(%q) accepted datacenters %q", s, dcs)
		}
	})
}
