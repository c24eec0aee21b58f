package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// distribution/v3 logs only through logrus's process-wide standard logger:
// its per-request loggers derive from an internal default that cannot be
// replaced from outside the module. So the hub takes that logger over once
// per process: output discarded, every entry forwarded to slog instead. Any
// other library logging through the standard logger ends up in slog too,
// at its own level, which beats writing to berth's stderr.
var logBridge struct {
	once   sync.Once
	target atomic.Pointer[slog.Logger]
}

// bridgeLogrus points the bridge at l (the latest Hub wins).
func bridgeLogrus(l *slog.Logger) {
	logBridge.target.Store(l)
	logBridge.once.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.AddHook(logrusHook{})
	})
}

type logrusHook struct{}

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (logrusHook) Fire(e *logrus.Entry) error {
	l := logBridge.target.Load()
	if l == nil {
		return nil
	}
	level := slogLevel(e)
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.Enabled(ctx, level) {
		return nil
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != registryMarker {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, e.Data[k]))
	}
	l.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// registryMarker is a field distribution adds to every entry made through
// its context loggers, which tells the registry's own entries apart.
const registryMarker = "go.version"

// slogLevel demotes the registry's routine chatter: it logs every request
// at info, every auth challenge (the first request of any pull) at warn,
// and every client error (unknown blob on a push's HEAD, say) at error.
// Only failures it could not classify ("UNKNOWN") stay errors.
func slogLevel(e *logrus.Entry) slog.Level {
	if _, ok := e.Data[registryMarker]; !ok {
		return plainLevel(e.Level)
	}
	switch {
	case e.Level <= logrus.ErrorLevel:
		if code, ok := e.Data["err.code"]; ok && !strings.EqualFold(fmt.Sprint(code), "unknown") {
			return slog.LevelDebug
		}
		return slog.LevelError
	case e.Level == logrus.WarnLevel:
		if strings.HasPrefix(e.Message, "error authorizing context") {
			return slog.LevelDebug
		}
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}

func plainLevel(l logrus.Level) slog.Level {
	switch {
	case l <= logrus.ErrorLevel:
		return slog.LevelError
	case l == logrus.WarnLevel:
		return slog.LevelWarn
	case l == logrus.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
