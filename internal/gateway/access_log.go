package gateway

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"
)

// accessLog writes one JSON object a line. Lines are buffered and flushed
// every second: a write(2) per request would cost more than the proxying.
type accessLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	buf  []byte
	stop chan struct{}
	done chan struct{}
}

func newAccessLog(w io.Writer) *accessLog {
	l := &accessLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushEvery(time.Second)
	return l
}

func (l *accessLog) flushEvery(d time.Duration) {
	defer close(l.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
		case <-l.stop:
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
			return
		}
	}
}

func (l *accessLog) close() {
	close(l.stop)
	<-l.done
}

func (l *accessLog) observe(rec *AccessRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	b = append(b, `{"time":`...)
	b = appendJSONString(b, rec.Time.UTC().Format(time.RFC3339Nano))
	b = appendField(b, "request_id", rec.RequestID)
	b = appendField(b, "remote", rec.Remote)
	b = appendField(b, "proto", rec.Proto)
	b = appendField(b, "method", rec.Method)
	b = appendField(b, "host", rec.Host)
	b = appendField(b, "path", rec.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = appendField(b, "route", metricRoute(rec))
	b = appendField(b, "component", rec.component())
	b = appendField(b, "upstream", rec.Upstream)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, rec.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, rec.BytesOut, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(rec.Duration.Microseconds())/1000, 'f', 3, 64)
	b = appendField(b, "cause", rec.Cause)
	b = append(b, "}\n"...)
	l.buf = b
	l.w.Write(b)
}

// appendField adds ,"key":"value" when value is set.
func appendField(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
