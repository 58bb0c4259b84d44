package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// cluster is the cluster every test shares; nil under -short.
var cluster *consultest.Cluster

func TestMain(m *testing.M) {
	code := func() int {
		flagShort := false
		for _, a := range os.Args {
			flagShort = flagShort || a == "-test.short" || a == "-test.short=true"
		}
		if !flagShort {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			bin, err := consultest.Find(ctx, os.Stderr)
			if err != nil {
				fmt.Fprintln(os.Stderr, "clustertest:", err)
				return 1
			}
			c, err := consultest.StartCluster(ctx, consultest.ClusterConfig{Binary: bin, ManagementToken: "clustertest-" + fmt.Sprint(time.Now().UnixNano())})
			if err != nil {
				fmt.Fprintln(os.Stderr, "clustertest:", err)
				return 1
			}
			defer c.Stop()
			cluster = c
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "clustertest: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// need returns the shared cluster, or skips the test under -short.
func need(t *testing.T) *consultest.Cluster {
	t.Helper()
	if cluster == nil {
		t.Skip("needs a real Consul cluster; skipped with -short")
	}
	return cluster
}

// node returns the node named name.
func node(t *testing.T, c *consultest.Cluster, name string) *consultest.Node {
	t.Helper()
	for _, n := range c.Nodes() {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %s", name)
	return nil
}

// registryOn returns a kit registry on node n's agent, closed at the end of
// the test.
func registryOn(t *testing.T, c *consultest.Cluster, n *consultest.Node) *consul.Registry {
	t.Helper()
	r := consul.New(consultest.NodeClient(t, c, n), consul.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(r.Close)
	return r
}

// serveOn serves the test service as name, registered through reg, until
// the test ends or stop is called.
func serveOn(t *testing.T, reg registry.Registrar, name string) (addr string, stop func()) {
	t.Helper()
	return serveAs(t, reg, name, name)
}

// serveAs is serveOn with server as the server field of the answers, to
// tell instances apart.
func serveAs(t *testing.T, reg registry.Registrar, name, server string) (addr string, stop func()) {
	t.Helper()
	srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: name}), kit.WithDrain(0),
		kit.WithAdminAddress(""), kit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	(&kittest.Service{Name: server}).Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// passing returns the passing instances of name that node n's agent knows,
// in datacenter dc ("" the node's).
func passing(c *api.Client, name, dc string) ([]*api.ServiceEntry, error) {
	entries, _, err := c.Health().Service(name, "", true, &api.QueryOptions{Datacenter: dc, AllowStale: true})
	return entries, err
}

// waitFor polls cond every 20ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("waiting %v until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
