package websocket

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

// InfoPath answers {"relay_prefix":"RELAY:"}, what the page needs to know of the host.
const InfoPath = "/api/v1/info"

// The page at / (index.html, app.js, style.css): plain HTML, CSS and JavaScript with no
// build step and nothing fetched from elsewhere, so it works on a network without internet.
//
//go:embed web
var webFiles embed.FS

func pageHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		h := w.Header()
		// The page talks only to this server; nothing else may run in it or frame it.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func (t *Transport) serveInfo(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	if t.opts.token != "" && !t.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pvhub"`)
		http.Error(w, "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"relay_prefix": t.relayPrefix})
}

// getOrHead answers 405 to other methods.
func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, r.Method+" is not allowed here; use GET", http.StatusMethodNotAllowed)
	return false
}
