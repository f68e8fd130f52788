package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Path is where the page is served.
const Path = "/settings/data-streaming"

// Register adds the page and its assets to mux.
func Register(mux *http.ServeMux) {
	files, _ := fs.Sub(static, "static")
	assets := http.StripPrefix("/settings/assets/", http.FileServerFS(files))
	mux.Handle("GET /settings/assets/", secure(assets))
	mux.Handle("GET "+Path, secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})))
	mux.Handle("GET /{$}", http.RedirectHandler(Path, http.StatusFound))
}

// secure sets the headers of every page response: scripts and styles only
// from this origin, no framing, no sniffing, no referrer.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
