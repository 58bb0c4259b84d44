package resolver

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseTarget: no target string may panic the parser, and an accepted
// target names a service without a slash.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"consul:///user", "consul://h:1/user?tag=a&dc=b", "consul:///", "consul:user", "consul:///a?tag=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		tgt, err := ParseTarget(*u)
		if err == nil && (tgt.Service == "" || strings.Contains(tgt.Service, "/")) {
			t.Errorf("ParseTarget(%q) accepted service %q", s, tgt.Service)
		}
	})
}
