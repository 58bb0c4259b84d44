package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// testPKI is a CA and PEM files it signed, in a temporary directory.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "grpckit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key}
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a leaf certificate for cn and returns its cert and key files.
func (p *testPKI) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{cn},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, cn+".pem", "CERTIFICATE", der), p.write(t, cn+"-key.pem", "PRIVATE KEY", keyDER)
}

// serveTLS starts a server with creds and a's interceptors on loopback and
// returns its address.
func serveTLS(t *testing.T, creds credentials.TransportCredentials, a *Authenticator) (string, *testServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(a.UnaryServerInterceptor()))
	srv := &testServer{seen: make(chan seen, 1)}
	testgrpc.RegisterTestServiceServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return lis.Addr().String(), srv
}

// call makes one UnaryCall to addr with creds and the bearer token tok.
func call(t *testing.T, addr string, creds credentials.TransportCredentials, tok string) (codes.Code, *testgrpc.SimpleResponse) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(BearerToken(tok)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := testgrpc.NewTestServiceClient(cc).UnaryCall(t.Context(), &testgrpc.SimpleRequest{})
	return status.Code(err), resp
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	serverCert, serverKey := pki.issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := pki.issue(t, "svc-client", x509.ExtKeyUsageClientAuth)
	otherPKI := newTestPKI(t)
	strangerCert, strangerKey := otherPKI.issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	a := newAuthenticator(t, hmacConfig())
	tok := issue(t, secret, "alice")

	mustClient := func(ca, cert, key, name string) credentials.TransportCredentials {
		t.Helper()
		c, err := ClientTLS(ca, cert, key, name)
		if err != nil {
			t.Fatalf("ClientTLS: %v", err)
		}
		return c
	}
	mustServer := func(cert, key, ca string) credentials.TransportCredentials {
		t.Helper()
		c, err := ServerTLS(cert, key, ca)
		if err != nil {
			t.Fatalf("ServerTLS: %v", err)
		}
		return c
	}

	tlsAddr, tlsSrv := serveTLS(t, mustServer(serverCert, serverKey, ""), a)
	mtlsAddr, mtlsSrv := serveTLS(t, mustServer(serverCert, serverKey, pki.CAFile), a)

	for _, tc := range []struct {
		name   string
		addr   string
		srv    *testServer
		client credentials.TransportCredentials
		want   codes.Code
	}{
		{"tls", tlsAddr, tlsSrv, mustClient(pki.CAFile, "", "", "localhost"), codes.OK},
		{"tls, server name from the address", tlsAddr, tlsSrv, mustClient(pki.CAFile, "", "", ""), codes.OK},
		{"tls, unknown CA", tlsAddr, tlsSrv, mustClient(otherPKI.CAFile, "", "", "localhost"), codes.Unavailable},
		{"tls, wrong server name", tlsAddr, tlsSrv, mustClient(pki.CAFile, "", "", "billing"), codes.Unavailable},
		{"mtls", mtlsAddr, mtlsSrv, mustClient(pki.CAFile, clientCert, clientKey, "localhost"), codes.OK},
		{"mtls, no client certificate", mtlsAddr, mtlsSrv, mustClient(pki.CAFile, "", "", "localhost"), codes.Unavailable},
		{"mtls, client certificate of another CA", mtlsAddr, mtlsSrv, mustClient(pki.CAFile, strangerCert, strangerKey, "localhost"), codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := call(t, tc.addr, tc.client, tok)
			if got != tc.want {
				t.Fatalf("code = %v, want %v", got, tc.want)
			}
			if got == codes.OK {
				// The bearer token went over TLS without AllowInsecure.
				if caller := (<-tc.srv.seen).Caller; caller != "alice" {
					t.Errorf("caller = %q, want alice", caller)
				}
			}
		})
	}
}

func TestTLSFileErrors(t *testing.T) {
	pki := newTestPKI(t)
	cert, key := pki.issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	absent := filepath.Join(t.TempDir(), "absent.pem")
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"server: missing cert", func() error { _, err := ServerTLS(absent, key, ""); return err }},
		{"server: key is not a cert's", func() error { _, err := ServerTLS(cert, cert, ""); return err }},
		{"server: missing client CA", func() error { _, err := ServerTLS(cert, key, absent); return err }},
		{"server: client CA without certificate", func() error { _, err := ServerTLS(cert, key, key); return err }},
		{"client: missing CA", func() error { _, err := ClientTLS(absent, "", "", ""); return err }},
		{"client: cert without key", func() error { _, err := ClientTLS(pki.CAFile, cert, "", ""); return err }},
	} {
		if tc.err() == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
