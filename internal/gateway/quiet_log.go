package gateway

import (
	"log"
	"log/slog"
)

// quietLog sends net/http's own complaints (TLS handshake errors from
// scanners, mostly) to slog at debug level instead of stderr.
func quietLog() *log.Logger {
	return slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)
}
