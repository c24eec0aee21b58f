package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type logLine struct {
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
}

// followSSE reads the event's log stream until its end message.
func followSSE(t *testing.T, s *server, id string, after int64) ([]logLine, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/events/%s/log?follow=1&after=%d", s.url, id, after), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var lines []logLine
	var kind string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "event: "):
			kind = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			data := strings.TrimPrefix(l, "data: ")
			switch kind {
			case "line":
				var ll logLine
				if err := json.Unmarshal([]byte(data), &ll); err != nil {
					t.Fatal(err)
				}
				lines = append(lines, ll)
			case "end":
				var ev map[string]any
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Fatal(err)
				}
				return lines, ev
			default:
				t.Fatalf("unexpected SSE event %q: %s", kind, data)
			}
		}
	}
	t.Fatalf("stream closed without an end message: %v", sc.Err())
	return nil, nil
}

func checkSequence(t *testing.T, what string, lines []logLine, from int64) {
	t.Helper()
	for i, l := range lines {
		if l.Seq != from+int64(i) {
			t.Fatalf("%s: line %d has seq %d, want %d (gap or duplicate)", what, i, l.Seq, from+int64(i))
		}
	}
}

// Followers that join at the start, midway (after=N) and over a WebSocket
// all see the history then the live lines, with no gap and no duplicate,
// and the stream ends with the event.
func TestFollowEventLog(t *testing.T) {
	s := startServer(t, "--debug-task-delay", "400ms")
	setupShop(s)
	s.must(201, "POST", comps, map[string]any{"alias": "api", "image": "nginx"})
	var acc struct {
		EventID string `json:"event_id"`
	}
	s.must(202, "POST", comps+"/api/deploy", nil).json(t, &acc)

	type result struct {
		lines []logLine
		ev    map[string]any
	}
	sse := make(chan result, 2)
	go func() { l, ev := followSSE(t, s, acc.EventID, 0); sse <- result{l, ev} }()
	time.Sleep(500 * time.Millisecond) // join the second follower midway
	go func() { l, ev := followSSE(t, s, acc.EventID, 2); sse <- result{l, ev} }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/events/" + acc.EventID + "/log/ws"
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var wsLines []logLine
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("websocket read: %v", err)
		}
		var msg struct {
			Type  string
			Line  logLine
			Event map[string]any
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type == "end" {
			if msg.Event["status"] != "success" {
				t.Fatalf("ws end event: %v", msg.Event)
			}
			break
		}
		wsLines = append(wsLines, msg.Line)
	}

	first, second := <-sse, <-sse
	if len(first.lines) > len(second.lines) {
		first, second = second, first
	}
	full, mid := second, first
	var hist struct {
		Event map[string]any
		Lines []logLine
	}
	s.must(200, "GET", "/api/v1/events/"+acc.EventID+"/log", nil).json(t, &hist)
	if hist.Event["status"] != "success" || full.ev["status"] != "success" {
		t.Fatalf("event did not succeed: %v / %v", hist.Event, full.ev)
	}
	if len(hist.Lines) < 5 {
		t.Fatalf("history too short: %v", hist.Lines)
	}
	checkSequence(t, "history", hist.Lines, 1)
	checkSequence(t, "follower from the start", full.lines, 1)
	checkSequence(t, "follower after 2", mid.lines, 3)
	checkSequence(t, "websocket", wsLines, 1)
	if len(full.lines) != len(hist.Lines) || len(wsLines) != len(hist.Lines) || len(mid.lines) != len(hist.Lines)-2 {
		t.Fatalf("followers saw %d, %d, %d lines; history has %d", len(full.lines), len(wsLines), len(mid.lines), len(hist.Lines))
	}
	if last := hist.Lines[len(hist.Lines)-1].Text; last != "deploy succeeded" {
		t.Fatalf("last line %q", last)
	}
	// Following an ended event returns its history and ends at once.
	lines, ev := followSSE(t, s, acc.EventID, 0)
	if len(lines) != len(hist.Lines) || ev["status"] != "success" {
		t.Fatalf("replay: %d lines, %v", len(lines), ev)
	}
	// Browsers' EventSource cannot send headers: the token may come in the query.
	r, err := http.Get(s.url + "/api/v1/events/" + acc.EventID + "/log?follow=1&access_token=" + s.token)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("query token: %v %v", err, r)
	}
	r.Body.Close()
}
