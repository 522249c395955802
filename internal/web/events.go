package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/ui"
)

// writeTimeout bounds one write to an event stream: a tab that stopped
// reading is cut off after it, while the node went on without it.
const writeTimeout = 10 * time.Second

// events streams the node's events as Server-Sent Events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	after, resume, err := lastEventID(r)
	if err != nil {
		return err
	}
	opts := []chat.SubscribeOption{chat.WithBuffer(s.cfg.EventBuffer)}
	resync := false
	var sub *chat.Subscription
	if resume {
		sub, err = s.a.Subscribe(append(opts, chat.After(after))...)
		if errors.Is(err, chat.ErrGap) {
			resync = true
			sub, err = s.a.Subscribe(opts...)
		}
	} else {
		sub, err = s.a.Subscribe(opts...)
	}
	if err != nil {
		return err
	}
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no buffering in a reverse proxy
	w.WriteHeader(http.StatusOK)
	write := func(format string, args ...any) error {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	// Tell the browser how long to wait before reconnecting.
	if err := write("retry: 1000\n\n"); err != nil {
		return nil
	}
	if resync {
		// Events since the page's last one are gone: it must refetch.
		if err := write("event: resync\ndata: {}\n\n"); err != nil {
			return nil
		}
	}
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	var render ui.JSON
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-beat.C:
			if err := write(": keep-alive\n\n"); err != nil {
				return nil
			}
		case st, ok := <-sub.C():
			if !ok {
				// Fell behind (the page reconnects with Last-Event-ID and
				// resumes from the replay buffer) or the node stops.
				return nil
			}
			line := render.Event(st.Event)
			if line == "" {
				continue
			}
			if err := write("id: %d\ndata: %s\n\n", st.Seq, line); err != nil {
				return nil
			}
		}
	}
}

// lastEventID reads where a reconnecting stream resumes: the
// Last-Event-ID header (set by EventSource itself) or ?after=SEQ.
func lastEventID(r *http.Request) (uint64, bool, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, badRequest("event id %q: want a number", v)
	}
	return n, true, nil
}
