package serve

import (
	"log/slog"
	"net/http"
	"time"
)

// defaultReadHeaderTimeout is how long a client may take to send a
// request's headers: a slow-loris client is cut off after it.
const defaultReadHeaderTimeout = 10 * time.Second

// newHTTPServer returns the API's http.Server with j1ds's connection
// limits; tests shorten readHeaderTimeout.
func newHTTPServer(handler http.Handler, log *slog.Logger, readHeaderTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
