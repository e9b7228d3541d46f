// Package apitest talks to the throwaway kube-apiserver started by tests/k8s/cluster.sh over its
// REST API (no client library): one identity per Client, a bearer token each.
package apitest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Env is what cluster.sh exported: the server, its CA and one token per identity.
type Env struct {
	Server, CAFile                      string
	AdminToken, DriverToken, ProbeToken string
	NobodyToken, DeployDir              string
}

// LoadEnv reads the TETHER_K8S_* variables; a missing one means the tests were not started by run.sh.
func LoadEnv() (Env, error) {
	var e Env
	for name, field := range map[string]*string{
		"TETHER_K8S_SERVER": &e.Server, "TETHER_K8S_CA": &e.CAFile, "TETHER_K8S_ADMIN_TOKEN": &e.AdminToken,
		"TETHER_K8S_DRIVER_TOKEN": &e.DriverToken, "TETHER_K8S_PROBE_TOKEN": &e.ProbeToken,
		"TETHER_K8S_NOBODY_TOKEN": &e.NobodyToken, "TETHER_K8S_DEPLOY_DIR": &e.DeployDir,
	} {
		if *field = os.Getenv(name); *field == "" {
			return Env{}, fmt.Errorf("%s is not set: run these tests through tests/k8s/run.sh", name)
		}
	}
	return e, nil
}

// Client sends requests as one identity.
type Client struct {
	server, token string
	http          *http.Client
}

// NewClient trusts only the test CA.
func NewClient(e Env, token string) (*Client, error) {
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", e.CAFile)
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &Client{server: e.Server, token: token, http: &http.Client{Transport: transport, Timeout: 30 * time.Second}}, nil
}

// Response is a status code and the raw body, decoded on demand.
type Response struct {
	Status int
	Body   []byte
}

// Decode unmarshals the body into v.
func (r Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("decoding %d response %q: %w", r.Status, r.Body, err)
	}
	return nil
}

// Do sends body (marshalled to JSON unless it is already []byte) with the given content type.
func (c *Client) Do(method, path, contentType string, body any) (Response, error) {
	var reader io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				return Response{}, err
			}
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.server+path, reader)
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: raw}, err
}
