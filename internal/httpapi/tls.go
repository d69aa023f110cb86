package httpapi

import (
	"crypto/tls"
	"fmt"
)

// LoadTLS returns the server TLS configuration of a certificate chain and
// key (PEM files): TLS 1.2 or later.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s / key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
