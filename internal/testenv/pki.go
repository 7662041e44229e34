package testenv

import (
	"crypto"
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

// keyPair is a certificate and its key, PEM encoded.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// pki holds everything the control plane needs to authenticate its parts
// to each other, generated with crypto/x509 so no openssl is needed.
type pki struct {
	ca, frontProxyCA                           *keyPair
	serving, admin, controllerManager          *keyPair
	scheduler, kwok, frontProxyClient          *keyPair
	serviceAccountKeyPEM, serviceAccountPubPEM []byte
}

func newPKI() (*pki, error) {
	var p pki
	var err error
	if p.ca, err = newCA("baton-testenv-ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCA, err = newCA("baton-testenv-front-proxy-ca"); err != nil {
		return nil, err
	}
	p.serving, err = p.ca.issue(pkix.Name{CommonName: "kube-apiserver"}, true,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")})
	if err != nil {
		return nil, err
	}
	clients := []struct {
		dst  **keyPair
		name pkix.Name
	}{
		{&p.admin, pkix.Name{CommonName: "baton-testenv-admin", Organization: []string{"system:masters"}}},
		{&p.controllerManager, pkix.Name{CommonName: "system:kube-controller-manager"}},
		{&p.scheduler, pkix.Name{CommonName: "system:kube-scheduler"}},
		// kwok writes node and pod status for every fake node: admin is simplest.
		{&p.kwok, pkix.Name{CommonName: "kwok", Organization: []string{"system:masters"}}},
	}
	for _, c := range clients {
		if *c.dst, err = p.ca.issue(c.name, false, nil, nil); err != nil {
			return nil, err
		}
	}
	if p.frontProxyClient, err = p.frontProxyCA.issue(pkix.Name{CommonName: "front-proxy-client"}, false, nil, nil); err != nil {
		return nil, err
	}
	// Service account tokens are signed with RSA, the algorithm every
	// Kubernetes version accepts.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	p.serviceAccountKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p.serviceAccountPubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	return &p, nil
}

func newCA(name string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, tmpl, key, key)
}

// issue signs a serving (server=true) or client certificate with the CA.
func (ca *keyPair) issue(subject pkix.Name, server bool, dns []string, ips []net.IP) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	usage := x509.ExtKeyUsageClientAuth
	if server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	return sign(tmpl, ca.cert, key, ca.key)
}

func sign(tmpl, parent *x509.Certificate, key, parentKey crypto.Signer) (*keyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// write saves the files the components read, and returns their paths by name.
func (p *pki) write(dir string) (map[string]string, error) {
	files := map[string][]byte{
		"ca.crt": p.ca.CertPEM, "ca.key": p.ca.KeyPEM,
		"front-proxy-ca.crt":     p.frontProxyCA.CertPEM,
		"front-proxy-client.crt": p.frontProxyClient.CertPEM, "front-proxy-client.key": p.frontProxyClient.KeyPEM,
		"apiserver.crt": p.serving.CertPEM, "apiserver.key": p.serving.KeyPEM,
		"sa.key": p.serviceAccountKeyPEM, "sa.pub": p.serviceAccountPubPEM,
	}
	paths := map[string]string{}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
		paths[name] = path
	}
	return paths, nil
}
