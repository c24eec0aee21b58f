package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const testEventID = "ev-abcdefghijklmnop"

// fastFollow shortens the follower's pauses so that tests run quickly.
func fastFollow(c *Client) *Client {
	c.followBackoff = time.Millisecond
	c.waitInterval = 8 * time.Millisecond
	return c
}

func collect(lines *[]Line) func(Line) error {
	return func(l Line) error {
		*lines = append(*lines, l)
		return nil
	}
}

func checkSeqs(t *testing.T, lines []Line, from, to int64) {
	t.Helper()
	var got []int64
	for _, l := range lines {
		got = append(got, l.Seq)
	}
	if len(lines) != int(to-from+1) {
		t.Fatalf("got seqs %v, want %d..%d", got, from, to)
	}
	for i, l := range lines {
		if l.Seq != from+int64(i) || l.Text != fmt.Sprintf("line %d", l.Seq) {
			t.Fatalf("got seqs %v, want %d..%d without gap or duplicate", got, from, to)
		}
	}
}

func TestFollowLogParsesServerSentEvents(t *testing.T) {
	var query string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		if r.URL.Path != "/api/v1/events/"+testEventID+"/log" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "wrong request", 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		// Keep-alives, CRLF line ends, a data field without the optional
		// space, a message split over two data fields and an unknown event
		// type must all be handled.
		io.WriteString(w, ": ping\n\n"+
			"id: 3\nevent: line\ndata: {\"seq\":3,\"stage\":\"Build\",\"text\":\"line 3\"}\n\n"+
			"id: 4\r\nevent: line\r\ndata:{\"seq\":4,\"text\":\"line 4\"}\r\n\r\n"+
			": ping\n"+
			"event: progress\ndata: {\"percent\":50}\n\n"+
			"id: 5\nevent: line\ndata: {\"seq\":5,\ndata: \"text\":\"line 5\"}\n\n"+
			"event: end\ndata: {\"id\":\""+testEventID+"\",\"status\":\"success\"}\n\n")
	}))
	var lines []Line
	ev, err := c.FollowLog(context.Background(), testEventID, 2, collect(&lines))
	if err != nil {
		t.Fatal(err)
	}
	if query != "after=2&follow=1" {
		t.Fatalf("query %q", query)
	}
	if ev.ID != testEventID || ev.Status != EventSuccess || !ev.Done() || ev.Failed() {
		t.Fatalf("end event %+v", ev)
	}
	checkSeqs(t, lines, 3, 5)
	if lines[0].Stage != "Build" {
		t.Fatalf("stage lost: %+v", lines[0])
	}
}

// logServer serves an event log of n lines over SSE. Each connection sends
// the lines after ?after, but the first cut connections stop after perConn
// lines without ending, like a dropped connection.
type logServer struct {
	mu      sync.Mutex
	n       int
	perConn int
	cut     int
	replay  int // how many already-seen lines each connection repeats
	afters  []string
	status  string
}

func (s *logServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.afters = append(s.afters, r.URL.Query().Get("after"))
	conn := len(s.afters)
	s.mu.Unlock()

	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	from := max(after-s.replay, 0) + 1
	w.Header().Set("Content-Type", "text/event-stream")
	sent := 0
	for seq := from; seq <= s.n; seq++ {
		if conn <= s.cut && sent == s.perConn {
			return // drop the connection mid-stream
		}
		fmt.Fprintf(w, "id: %d\nevent: line\ndata: {\"seq\":%d,\"text\":\"line %d\"}\n\n", seq, seq, seq)
		w.(http.Flusher).Flush()
		sent++
	}
	if conn <= s.cut {
		return
	}
	fmt.Fprintf(w, "event: end\ndata: {\"id\":%q,\"status\":%q}\n\n", testEventID, s.status)
}

func TestFollowLogResumesWithoutGapOrDuplicate(t *testing.T) {
	s := &logServer{n: 10, perConn: 3, cut: 3, status: EventFailure}
	c := fastFollow(newTestClient(t, s))
	var lines []Line
	ev, err := c.FollowLog(context.Background(), testEventID, 0, collect(&lines))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Failed() {
		t.Fatalf("event %+v", ev)
	}
	checkSeqs(t, lines, 1, 10)
	if want := []string{"", "3", "6", "9"}; fmt.Sprint(s.afters) != fmt.Sprint(want) {
		t.Fatalf("connections asked for after=%q, want %q", s.afters, want)
	}
}

func TestFollowLogSkipsLinesTheServerReplays(t *testing.T) {
	s := &logServer{n: 8, perConn: 4, cut: 2, replay: 2, status: EventSuccess}
	c := fastFollow(newTestClient(t, s))
	var lines []Line
	if _, err := c.FollowLog(context.Background(), testEventID, 0, collect(&lines)); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, lines, 1, 8)
}

func TestFollowLogGivesUpOnAServerThatNeverAnswers(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusBadGateway)
	})))
	_, err := c.FollowLog(context.Background(), testEventID, 0, func(Line) error { return nil })
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 502 {
		t.Fatalf("error %v", err)
	}
	if calls != c.followRetries+1 {
		t.Fatalf("%d calls, want %d", calls, c.followRetries+1)
	}
}

func TestFollowLogDoesNotRetryClientErrors(t *testing.T) {
	calls := 0
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"event not found"}}`)
	})))
	_, err := c.FollowLog(context.Background(), testEventID, 0, func(Line) error { return nil })
	if !IsNotFound(err) || err.Error() != "event not found" || calls != 1 {
		t.Fatalf("error %v after %d calls", err, calls)
	}
}

func TestFollowLogReturnsTheCallbackError(t *testing.T) {
	s := &logServer{n: 5, status: EventSuccess}
	c := fastFollow(newTestClient(t, s))
	stop := errors.New("seen enough")
	var lines []Line
	_, err := c.FollowLog(context.Background(), testEventID, 0, func(l Line) error {
		if l.Seq == 3 {
			return stop
		}
		lines = append(lines, l)
		return nil
	})
	if err != stop {
		t.Fatalf("error %v, want the callback's own", err)
	}
	checkSeqs(t, lines, 1, 2)
	if len(s.afters) != 1 {
		t.Fatalf("reconnected after a callback error: %v", s.afters)
	}
}

func TestFollowLogRejectsANonStreamAnswer(t *testing.T) {
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"event":{},"lines":[]}`)
	})))
	_, err := c.FollowLog(context.Background(), testEventID, 0, func(Line) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "text/event-stream") {
		t.Fatalf("error %v", err)
	}
}

func TestFollowLogReconnectsASilentStream(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns++
		n := conns
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			io.WriteString(w, "event: line\ndata: {\"seq\":1,\"text\":\"line 1\"}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // hang, like a connection lost without a reset
			return
		}
		io.WriteString(w, "event: line\ndata: {\"seq\":2,\"text\":\"line 2\"}\n\nevent: end\ndata: {\"status\":\"success\"}\n\n")
	})))
	c.followIdle = 50 * time.Millisecond
	var lines []Line
	if _, err := c.FollowLog(context.Background(), testEventID, 0, collect(&lines)); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, lines, 1, 2)
}

func TestFollowLogStopsWithTheContext(t *testing.T) {
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.FollowLog(ctx, testEventID, 0, func(Line) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
}

func TestFollowLogWebSocketResumes(t *testing.T) {
	var mu sync.Mutex
	var afters []string
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events/"+testEventID+"/log/ws" || r.Header.Get("Authorization") != "Bearer secret-token" {
			http.Error(w, "wrong request", 400)
			return
		}
		mu.Lock()
		afters = append(afters, r.URL.Query().Get("after"))
		first := len(afters) == 1
		mu.Unlock()
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		for seq := after + 1; seq <= 6; seq++ {
			if first && seq == 4 {
				conn.Close(websocket.StatusNormalClosure, "") // closed too early
				return
			}
			l := Line{Seq: int64(seq), Text: fmt.Sprintf("line %d", seq)}
			msg, _ := json.Marshal(wsMessage{Type: "line", Line: &l})
			conn.Write(r.Context(), websocket.MessageText, msg)
		}
		msg, _ := json.Marshal(wsMessage{Type: "end", Event: &Event{ID: testEventID, Status: EventSuccess}})
		conn.Write(r.Context(), websocket.MessageText, msg)
		conn.Close(websocket.StatusNormalClosure, "")
	})))
	var lines []Line
	ev, err := c.FollowLogWebSocket(context.Background(), testEventID, 0, collect(&lines))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Status != EventSuccess {
		t.Fatalf("event %+v", ev)
	}
	checkSeqs(t, lines, 1, 6)
	if fmt.Sprint(afters) != fmt.Sprint([]string{"", "3"}) {
		t.Fatalf("afters %q", afters)
	}
}

func TestReadLogPages(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		page := EventLog{Event: Event{ID: testEventID, Status: EventRunning}}
		for seq := after + 1; seq <= min(after+3, 7); seq++ {
			page.Lines = append(page.Lines, Line{Seq: int64(seq), Text: fmt.Sprintf("line %d", seq)})
		}
		json.NewEncoder(w).Encode(page)
	}))
	var lines []Line
	ev, err := c.ReadLog(context.Background(), testEventID, 0, collect(&lines))
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, lines, 1, 7)
	if ev.Status != EventRunning {
		t.Fatalf("event %+v", ev)
	}
}

func TestWaitEvent(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	c := fastFollow(newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		switch {
		case n == 2:
			w.WriteHeader(http.StatusServiceUnavailable) // a blip is retried
		case n < 4:
			fmt.Fprintf(w, `{"id":%q,"status":"running"}`, testEventID)
		default:
			fmt.Fprintf(w, `{"id":%q,"status":"failure","message":"image not found"}`, testEventID)
		}
	})))
	ev, err := c.WaitEvent(context.Background(), testEventID)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Failed() || ev.Message != "image not found" || polls != 4 {
		t.Fatalf("event %+v after %d polls", ev, polls)
	}
}
