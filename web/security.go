package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

const tokenCookie = "scorch_token"

// CSPs: pages load only their own script and styles; JSON and files load
// nothing.
const (
	cspPage = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; object-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
	cspNone = "default-src 'none'; frame-ancestors 'none'"
)

// cspSVG allows only the flame graph's own script and style, by nonce.
func cspSVG(nonce string) string {
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce + "'; img-src data:; frame-ancestors 'self'"
}

// securityHeaders sets the headers every answer carries; handlers replace
// the CSP of pages and SVGs.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", cspNone)
		h.Set("Referrer-Policy", "no-referrer") // tokens may be in URLs
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// hostCheck refuses requests whose Host header names neither the listen
// address nor a loopback name: a DNS-rebinding page cannot reach the
// service through a name it controls.
func (s *Server) hostCheck(next http.Handler) http.Handler {
	listenHost, _, err := net.SplitHostPort(s.cfg.Listen)
	if err != nil {
		listenHost = s.cfg.Listen
	}
	allowed := map[string]bool{"localhost": true}
	if listenHost != "" {
		allowed[strings.ToLower(strings.Trim(listenHost, "[]"))] = true
	}
	for _, h := range s.cfg.AllowedHosts {
		allowed[strings.ToLower(h)] = true
	}
	wildcard := listenHost == "" || listenHost == "0.0.0.0" || listenHost == "::"
	if wildcard {
		if name, err := os.Hostname(); err == nil {
			allowed[strings.ToLower(name)] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		ip := net.ParseIP(host)
		ok := allowed[host] || strings.HasSuffix(host, ".localhost") || (ip != nil && ip.IsLoopback()) ||
			(wildcard && ip != nil)
		if !ok {
			writeError(w, http.StatusForbidden, "host "+quote(r.Host)+" is not served here: use the listen address "+s.cfg.Listen+", a loopback name or one given with --allow-host")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return "\"" + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + "\""
}

// auth requires the token, when one is set, as a bearer token, a ?token=
// parameter (browser links; it is then kept in a same-site cookie so that
// the page's assets and embedded graphs load) or that cookie.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	valid := func(got string) bool {
		h := sha256.Sum256([]byte(got))
		return got != "" && subtle.ConstantTimeCompare(h[:], want[:]) == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if a := r.Header.Get("Authorization"); a != "" {
			tok, ok := strings.CutPrefix(a, "Bearer ")
			if ok && valid(strings.TrimSpace(tok)) {
				next.ServeHTTP(w, r)
				return
			}
			writeError(w, http.StatusUnauthorized, "the bearer token is not valid")
			return
		}
		if tok := r.URL.Query().Get("token"); tok != "" {
			if !valid(tok) {
				writeError(w, http.StatusUnauthorized, "the token parameter is not valid")
				return
			}
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(tokenCookie); err == nil && valid(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="scorch"`)
		writeError(w, http.StatusUnauthorized, "a token is required: send Authorization: Bearer TOKEN or add ?token=TOKEN")
	})
}

// sameOrigin refuses state-changing requests sent by other sites' pages.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
				writeError(w, http.StatusForbidden, "cross-site requests may not change state (Sec-Fetch-Site: "+quote(site)+")")
				return
			}
			if o := r.Header.Get("Origin"); o != "" {
				u, err := url.Parse(o)
				if err != nil || !strings.EqualFold(u.Host, r.Host) {
					writeError(w, http.StatusForbidden, "cross-origin requests may not change state (Origin "+quote(o)+")")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requestLog writes one slog line per request and counts it.
func (s *Server) requestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			route := chi.RouteContext(r.Context())
			pattern := ""
			if route != nil {
				pattern = route.RoutePattern()
			}
			if pattern == "" {
				pattern = "unmatched"
			}
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(status)).Inc()
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
				"bytes", ww.BytesWritten(), "duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(ww, r)
	})
}

// recoverer answers 500 instead of dropping the connection when a handler
// panics, and logs the panic.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeDeadline extends a request's write deadline; the server's default
// is short and only routes that wait for a capture need more.
func writeDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
