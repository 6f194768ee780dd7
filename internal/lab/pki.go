package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the key material the API server needs, as files in one dir: a
// self-signed CA, a serving certificate signed by it, and the
// service-account signing key pair.
type pki struct {
	CAFile, CertFile, KeyFile string // PEM: CA cert, serving cert, serving key
	SAPubFile, SAKeyFile      string // PEM: service-account public and private key
	CAPEM                     []byte // the CA cert, for client configs
}

// newPKI writes fresh key material for a server reached at ips into dir.
// ECDSA P-256 keeps generation fast; the service-account key is RSA because
// that is what the API server's token signer defaults to.
func newPKI(dir string, ips ...net.IP) (*pki, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := template("nodebridge-lab-ca")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid = true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	srvTmpl := template("kube-apiserver")
	srvTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	srvTmpl.IPAddresses = ips
	srvTmpl.DNSNames = []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc"}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	return writePKI(dir, caDER, srvDER, srvKey, saKey)
}

// template is a certificate valid for a day from a minute ago, so a clock
// a little behind does not reject it.
func template(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62)) // crypto/rand does not fail on Linux
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
}

// writePKI encodes the material as PEM files in dir.
func writePKI(dir string, caDER, srvDER []byte, srvKey *ecdsa.PrivateKey, saKey *rsa.PrivateKey) (*pki, error) {
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode service-account public key: %w", err)
	}
	p := &pki{
		CAFile:    filepath.Join(dir, "ca.crt"),
		CertFile:  filepath.Join(dir, "apiserver.crt"),
		KeyFile:   filepath.Join(dir, "apiserver.key"),
		SAPubFile: filepath.Join(dir, "sa.pub"),
		SAKeyFile: filepath.Join(dir, "sa.key"),
		CAPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	files := []struct {
		path string
		b    *pem.Block
	}{
		{p.CAFile, &pem.Block{Type: "CERTIFICATE", Bytes: caDER}},
		{p.CertFile, &pem.Block{Type: "CERTIFICATE", Bytes: srvDER}},
		{p.KeyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}},
		{p.SAPubFile, &pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}},
		{p.SAKeyFile, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(f.b), 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return p, nil
}
