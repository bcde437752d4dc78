package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// RemoteKinds are the --remote-kind values.
var RemoteKinds = []string{"pyroscope", "parca", "otlp"}

// RemoteConfig says where and how to push. Secrets come from files.
type RemoteConfig struct {
	Kind         string // pyroscope, parca, otlp
	URL          string
	TokenFile    string            // bearer token
	User         string            // basic auth user (Grafana Cloud: the instance id)
	PasswordFile string            // basic auth password (Grafana Cloud: an access policy token)
	Headers      map[string]string // extra headers, e.g. X-Scope-OrgID
	CAFile       string            // PEM CA bundle that signs the remote's certificate
	ServerName   string            // TLS server name, when it differs from the URL's host
}

// NewRemote makes the remote of cfg.Kind.
func NewRemote(cfg RemoteConfig) (Remote, error) {
	if !slices.Contains(RemoteKinds, cfg.Kind) {
		return nil, fmt.Errorf("--remote-kind %q is not supported: allowed values are %s", cfg.Kind, strings.Join(RemoteKinds, ", "))
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--remote %q is not a URL such as http://127.0.0.1:4040", cfg.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("--remote: credentials in the URL would show in logs and process lists: use --remote-user with --remote-password-file")
	}
	hdr, err := cfg.headers()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tls(u)
	if err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case "pyroscope":
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("--remote %q: pyroscope takes an http:// or https:// URL", cfg.URL)
		}
		return newPyroscope(u, hdr, tlsCfg), nil
	case "parca":
		return newParca(u, hdr, tlsCfg)
	default:
		return newOTLP(u, hdr, tlsCfg)
	}
}

// headers are the HTTP headers (gRPC metadata) every push carries.
func (cfg RemoteConfig) headers() (http.Header, error) {
	h := make(http.Header)
	for k, v := range cfg.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("--remote-header %q: give NAME=VALUE with a header name", k)
		}
		h.Set(k, v)
	}
	readSecret := func(flag, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" || strings.ContainsAny(s, "\r\n") {
			return "", fmt.Errorf("%s %s: the file must hold one non-empty line", flag, path)
		}
		return s, nil
	}
	switch {
	case cfg.TokenFile != "" && (cfg.User != "" || cfg.PasswordFile != ""):
		return nil, errors.New("give either --remote-token-file (bearer) or --remote-user with --remote-password-file (basic), not both")
	case cfg.TokenFile != "":
		tok, err := readSecret("--remote-token-file", cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		h.Set("Authorization", "Bearer "+tok)
	case cfg.User != "" || cfg.PasswordFile != "":
		if cfg.User == "" || cfg.PasswordFile == "" {
			return nil, errors.New("basic auth needs both --remote-user and --remote-password-file")
		}
		pw, err := readSecret("--remote-password-file", cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+pw)))
	}
	return h, nil
}

// tls is the client TLS configuration for https:// and grpcs:// URLs; nil
// for plaintext.
func (cfg RemoteConfig) tls(u *url.URL) (*tls.Config, error) {
	if u.Scheme != "https" && u.Scheme != "grpcs" {
		if cfg.CAFile != "" {
			return nil, fmt.Errorf("--remote-ca-file needs an https:// (or grpcs://) --remote URL, not %s://", u.Scheme)
		}
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--remote-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--remote-ca-file %s holds no PEM certificate", cfg.CAFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// headerTransport adds the configured headers to every request.
type headerTransport struct {
	base http.RoundTripper
	hdr  http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.hdr {
		r.Header[k] = v
	}
	return t.base.RoundTrip(r)
}

// httpClient is the client of HTTP remotes: bounded connection reuse and
// timeouts, so a remote that hangs cannot hold sockets forever.
func httpClient(hdr http.Header, tlsCfg *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: &headerTransport{base: tr, hdr: hdr}}
}

// grpcTarget is the host:port to dial for a gRPC URL, with the engine's
// default port when none is given.
func grpcTarget(u *url.URL, defPort string) (string, error) {
	switch u.Scheme {
	case "grpc", "grpcs", "http", "https":
	default:
		return "", fmt.Errorf("--remote %q: give grpc://HOST:PORT (plaintext) or grpcs:// / https:// (TLS)", u.String())
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	if u.Scheme == "https" || u.Scheme == "grpcs" {
		defPort = "443"
	}
	return net.JoinHostPort(u.Hostname(), defPort), nil
}
