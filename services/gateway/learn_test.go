package gateway

import (
	"slices"
	"testing"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
)

// TestAPIKey: the API of a set of instances is the fingerprint most of
// them publish (the greater on a tie), served by those instances; without
// fingerprints, their addresses. A method is public only when every one of
// them declares it.
func TestAPIKey(t *testing.T) {
	inst := func(port int, fp string, public string) registry.Instance {
		meta := map[string]string{}
		if fp != "" {
			meta[kit.MetaAPI] = fp
		}
		if public != "" {
			meta[kit.MetaPublic] = public
		}
		return registry.Instance{ID: fp, Address: "127.0.0.1", Port: port, Meta: meta}
	}
	key, members := apiKey([]registry.Instance{inst(1, "aaaa", "/a.B/C"), inst(2, "bbbb", ""), inst(3, "aaaa", "/a.B/C,/a.B/D")})
	if key != "api:aaaa" || len(members) != 2 {
		t.Errorf("majority: key %q, %d members", key, len(members))
	}
	if got := commonPublic(members); !slices.Equal(got, []string{"/a.B/C"}) {
		t.Errorf("common public methods %q, want [/a.B/C]", got)
	}
	if key, _ := apiKey([]registry.Instance{inst(1, "aaaa", ""), inst(2, "bbbb", "")}); key != "api:bbbb" {
		t.Errorf("tie: key %q, want the greater fingerprint", key)
	}
	key, members = apiKey([]registry.Instance{inst(2, "", ""), inst(1, "", "*")})
	if key != "addrs:127.0.0.1:1,127.0.0.1:2" || len(members) != 2 {
		t.Errorf("no fingerprints: key %q, %d members", key, len(members))
	}
	if got := commonPublic(members); len(got) != 0 {
		t.Errorf("one instance declares nothing public, yet %q", got)
	}
}
