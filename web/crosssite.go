package web

import (
	"net/http"
	"net/url"
	"strings"
)

// crossSiteGET guards GET and HEAD routes that start work against other
// sites' pages: an <img src> on any page the user visits could otherwise
// start whole-host captures (and, with --keep, evict the user's own) or
// keep the CPU busy rendering. Browsers say where a request comes from
// (Sec-Fetch-Site, Origin, Referer); curl and `go tool pprof` send none of
// these and pass. strict routes start captures: only same-origin requests
// and ones the user typed (Sec-Fetch-Site: none) pass. Other routes also
// let a user follow a link from another site (a top-level navigation),
// which a page cannot turn into a hidden load.
func crossSiteGET(strict bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				next.ServeHTTP(w, r)
				return
			}
			if why := crossSiteReason(r, strict); why != "" {
				writeError(w, http.StatusForbidden, "refused: "+why+"; open this URL from scorch's own pages, or fetch it with curl or go tool pprof")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// crossSiteReason says why r looks sent by another site's page, or "".
func crossSiteReason(r *http.Request, strict bool) string {
	site := r.Header.Get("Sec-Fetch-Site")
	navigation := r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
	if site != "" && site != "same-origin" && site != "none" && (strict || !navigation) {
		return "a " + site + " request (Sec-Fetch-Site: " + quote(site) + ") may not start work here"
	}
	if o := r.Header.Get("Origin"); o != "" && !sameHost(o, r.Host) {
		return "a request from another origin (Origin " + quote(o) + ") may not start work here"
	}
	// Without Sec-Fetch-* (a plain-http host that is not loopback) the
	// Referer is all there is. Only capture routes refuse on it: for the
	// others a followed link cannot be told from an embedded load.
	if ref := r.Header.Get("Referer"); strict && ref != "" && !sameHost(ref, r.Host) {
		return "a request from another site's page (Referer " + quote(ref) + ") may not start a capture"
	}
	return ""
}

// sameHost reports whether the URL u names host (with its port).
func sameHost(u, host string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Host != "" && strings.EqualFold(p.Host, host)
}
