package service

import (
	"net"
	"testing"
)

func TestReachable(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		advertise string
		addr      net.Addr
		want      string
	}{
		{"", tcp("127.0.0.1:8080"), "127.0.0.1:8080"},
		{"gw.example", tcp("0.0.0.0:8080"), "gw.example:8080"},
		{"", tcp("[::1]:8080"), "[::1]:8080"},
	} {
		if got := reachable(tc.advertise, tc.addr); got != tc.want {
			t.Errorf("reachable(%q, %v) = %q, want %q", tc.advertise, tc.addr, got, tc.want)
		}
	}
	got := reachable("", tcp("0.0.0.0:8080"))
	host, port, err := net.SplitHostPort(got)
	if ip := net.ParseIP(host); err != nil || port != "8080" || ip == nil || ip.IsUnspecified() {
		t.Errorf("reachable for 0.0.0.0:8080 = %q, want a specific IP", got)
	}
}
