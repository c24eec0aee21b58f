package acme

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	legolog "github.com/go-acme/lego/v4/log"
)

// ctxTransport ties every request lego makes to the context of the call
// that started it, since lego's API takes no context. The request keeps its
// own context too (http.Client's timeout lives there), so either ends it.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	// Cancelling now would cut off the body lego has yet to read.
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

type releaseOnClose struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// routeLegoLogs sends lego's process-wide logger to slog. lego narrates
// every step at "[INFO]", which is debug detail for berth: the Issuer logs
// the outcomes itself.
func routeLegoLogs() { legolog.Logger = legoSlog{} }

type legoSlog struct{}

func (legoSlog) emit(msg string) {
	msg = strings.TrimSpace(msg)
	level := slog.LevelDebug
	if rest, ok := strings.CutPrefix(msg, "[WARN] "); ok {
		level, msg = slog.LevelWarn, rest
	} else if rest, ok := strings.CutPrefix(msg, "[INFO] "); ok {
		msg = rest
	}
	slog.Default().Log(context.Background(), level, msg, "component", "acme", "source", "lego")
}

func (l legoSlog) Print(args ...any)                 { l.emit(fmt.Sprint(args...)) }
func (l legoSlog) Println(args ...any)               { l.emit(fmt.Sprint(args...)) }
func (l legoSlog) Printf(format string, args ...any) { l.emit(fmt.Sprintf(format, args...)) }

// lego's library code does not call Fatal; it is implemented to the
// interface's contract all the same.
func (l legoSlog) Fatal(args ...any)                 { l.fatal(fmt.Sprint(args...)) }
func (l legoSlog) Fatalln(args ...any)               { l.fatal(fmt.Sprint(args...)) }
func (l legoSlog) Fatalf(format string, args ...any) { l.fatal(fmt.Sprintf(format, args...)) }

func (legoSlog) fatal(msg string) {
	slog.Error(msg, "component", "acme", "source", "lego")
	os.Exit(1)
}
