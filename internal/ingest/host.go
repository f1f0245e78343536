package ingest

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// IsLoopbackHost reports whether host (a name or an IP, without port) is
// this host's loopback: localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.WithZone("").Unmap().IsLoopback()
}

// LoopbackHostOnly refuses a request whose Host does not name a loopback
// address. A server on loopback is reached so by its own clients; another
// Host means a browser was sent here by a page whose name now resolves to
// 127.0.0.1 (DNS rebinding). Config.LoopbackOnly puts it in front of the
// API; serve puts it in front of a loopback metrics listener too.
func LoopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !IsLoopbackHost(host) {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusForbidden, "this server listens on loopback and answers only requests for localhost or a loopback address", "Host")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireJSON refuses a write (POST, PATCH) whose Content-Type is not
// application/json, with 415. A browser sends a cross-site form or a
// no-cors fetch only with a form or text/plain type; a JSON one needs a
// CORS preflight this API never grants.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPatch {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				w.Header().Set("Connection", "close")
				writeError(w, http.StatusUnsupportedMediaType, "writes need Content-Type: application/json", "Content-Type")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
