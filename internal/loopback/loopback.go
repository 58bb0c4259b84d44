// Package loopback hands out ports on 127.0.0.1 for the processes that the
// test rigs, the dev stack and the chaos harness start and that cannot
// listen on :0 and report the address they got (PostgreSQL, service
// instances given a fixed -server.listen).
package loopback

import (
	"fmt"
	"net"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
// Another process may take it before the caller's process binds it; a caller
// that cannot afford that tries again with another port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loopback: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
