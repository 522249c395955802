package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/invite"
	"github.com/parley-chat/parley/internal/app"
)

// statusOf maps an app or chat error to an HTTP status: the client's
// mistakes are 4xx, never 500.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, chat.ErrNotInRoom), errors.Is(err, chat.ErrUnknownPeer):
		return http.StatusNotFound
	case errors.Is(err, chat.ErrAmbiguousNick), errors.Is(err, chat.ErrAlreadyInRoom):
		return http.StatusConflict
	case errors.Is(err, chat.ErrEmpty), errors.Is(err, chat.ErrTooLong), errors.Is(err, chat.ErrBadChars),
		errors.Is(err, chat.ErrSelf):
		return http.StatusBadRequest
	case errors.Is(err, chat.ErrOutboxFull):
		return http.StatusTooManyRequests
	case errors.Is(err, chat.ErrBusy), errors.Is(err, chat.ErrClosed):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(req.Token), []byte(s.cfg.Token)) != 1 {
		return &httpError{http.StatusUnauthorized, errors.New("wrong token: use the link parley printed")}
	}
	// No Path: the cookie goes to the API directory it was set from
	// (…/api/v1/), which also holds under a reverse proxy's prefix.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sessionValue(s.cfg.Token),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPI)
	return err
}

type infoJSON struct {
	Peer       string   `json:"peer"`
	Nick       string   `json:"nick"`
	Addrs      []string `json:"addrs"`
	Rooms      []string `json:"rooms"`
	RelayAddrs []string `json:"relay_addrs"`
	Connected  int      `json:"connected"`
	Web        string   `json:"web,omitempty"`
	Seq        uint64   `json:"seq"`
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) error {
	in := s.a.Info()
	return writeJSON(w, http.StatusOK, infoJSON{
		Peer: in.Peer.String(), Nick: in.Nick, Addrs: nonNil(in.Addrs), Rooms: nonNil(in.Rooms),
		RelayAddrs: nonNil(in.RelayAddrs), Connected: in.Connected, Web: s.cfg.URL, Seq: in.Seq,
	})
}

type roomJSON struct {
	Room   string `json:"room"`
	Unread int    `json:"unread"`
}

func (s *Server) roomList(w http.ResponseWriter) error {
	rs, err := s.a.RoomStates()
	if err != nil {
		return err
	}
	out := make([]roomJSON, len(rs))
	for i, r := range rs {
		out[i] = roomJSON{r.Room, r.Unread}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (s *Server) rooms(w http.ResponseWriter, _ *http.Request) error { return s.roomList(w) }

// roomName reads and validates the {room} path value; a leading '#' is
// accepted, as people type it.
func roomName(name string) (string, error) {
	if len(name) > 0 && name[0] == '#' {
		name = name[1:]
	}
	if err := chat.ValidateRoomName(name); err != nil {
		return "", badRequest("%v", err)
	}
	return name, nil
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Room string `json:"room"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if invite.IsLink(req.Room) {
		if _, err := invite.Decode(req.Room); err != nil {
			return badRequest("%v", err)
		}
		room, err := s.a.JoinLink(r.Context(), req.Room)
		if err != nil && !errors.Is(err, chat.ErrAlreadyInRoom) {
			return err
		}
		return s.roomListJoined(w, room)
	}
	room, err := roomName(req.Room)
	if err != nil {
		return err
	}
	if err := s.a.Join(room); err != nil && !errors.Is(err, chat.ErrAlreadyInRoom) {
		return err
	}
	return s.roomList(w)
}

// roomListJoined is the room list and the room just joined (an invite
// link's room, which the caller did not name).
func (s *Server) roomListJoined(w http.ResponseWriter, room string) error {
	rs, err := s.a.RoomStates()
	if err != nil {
		return err
	}
	out := make([]roomJSON, len(rs))
	for i, r := range rs {
		out[i] = roomJSON{Room: r.Room, Unread: r.Unread}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rooms": out, "room": room})
}

type inviteJSON struct {
	Room    string `json:"room"`
	Link    string `json:"link"`
	Private bool   `json:"private"`
}

// private creates a private room, joins it and answers its invite link.
func (s *Server) private(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Room string `json:"room"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	room, err := roomName(req.Room)
	if err != nil {
		return err
	}
	if _, err := s.a.CreatePrivate(room); err != nil {
		return err
	}
	inv, err := s.a.Invite(room)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, inviteJSON{inv.Room, inv.Link, inv.Private})
}

// invite answers an invite link to a joined room.
func (s *Server) invite(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r.PathValue("room"))
	if err != nil {
		return err
	}
	inv, err := s.a.Invite(room)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, inviteJSON{inv.Room, inv.Link, inv.Private})
}

func (s *Server) leave(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r.PathValue("room"))
	if err != nil {
		return err
	}
	if err := s.a.Leave(room); err != nil {
		return err
	}
	return s.roomList(w)
}

type messageJSON struct {
	ID     string `json:"id"`
	Room   string `json:"room"`
	From   string `json:"from"`
	Nick   string `json:"nick"`
	Text   string `json:"text"`
	SentAt string `json:"sent_at"`
	Own    bool   `json:"own"`
}

func limitParam(r *http.Request, def, maxLimit int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badRequest("limit %q: want a number from 1 to %d", v, maxLimit)
	}
	return n, nil
}

func (s *Server) roomMessages(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r.PathValue("room"))
	if err != nil {
		return err
	}
	limit, err := limitParam(r, 100, chat.MaxHistoryPage-1)
	if err != nil {
		return err
	}
	// One more than asked says whether older messages exist.
	msgs, err := s.a.History(room, r.URL.Query().Get("before"), limit+1)
	if err != nil {
		if errors.Is(err, chat.ErrNotStored) {
			return &httpError{http.StatusNotFound, err}
		}
		return err
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[1:]
	}
	self := s.a.ID()
	out := make([]messageJSON, len(msgs))
	for i, m := range msgs {
		out[i] = messageJSON{m.ID, m.Room, m.From.String(), m.Nick, m.Text, m.SentAt.UTC().Format(time.RFC3339Nano), m.From == self}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"messages": out, "more": more})
}

type textBody struct {
	Text string `json:"text"`
}

func (s *Server) say(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r.PathValue("room"))
	if err != nil {
		return err
	}
	var req textBody
	if err := decode(r, &req); err != nil {
		return err
	}
	id, err := s.a.Post(room, req.Text)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

func (s *Server) roomRead(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r.PathValue("room"))
	if err != nil {
		return err
	}
	if err := s.a.MarkRoomRead(room); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type dmJSON struct {
	ID     string `json:"id"`
	Peer   string `json:"peer"`
	Nick   string `json:"nick"`
	Text   string `json:"text"`
	SentAt string `json:"sent_at"`
	Own    bool   `json:"own"`
	State  string `json:"state"`
}

func dmOut(m chat.DMEntry) dmJSON {
	return dmJSON{m.ID, m.Peer.String(), m.Nick, m.Text, m.SentAt.UTC().Format(time.RFC3339Nano), m.Own, m.State}
}

func (s *Server) conversations(w http.ResponseWriter, _ *http.Request) error {
	cs, err := s.a.Conversations()
	if err != nil {
		return err
	}
	type conv struct {
		Peer   string `json:"peer"`
		Nick   string `json:"nick"`
		Last   dmJSON `json:"last"`
		Unread int    `json:"unread"`
	}
	out := make([]conv, len(cs))
	for i, c := range cs {
		out[i] = conv{c.Peer.String(), c.Nick, dmOut(c.Last), c.Unread}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"conversations": out})
}

// peerParam resolves the {peer} path value: a peer ID or a known nick.
func (s *Server) peerParam(r *http.Request) (peer.ID, error) {
	who := r.PathValue("peer")
	p, err := s.a.Resolve(who)
	if err != nil {
		return "", err
	}
	return p, nil
}

func (s *Server) dmMessages(w http.ResponseWriter, r *http.Request) error {
	p, err := s.peerParam(r)
	if err != nil {
		return err
	}
	limit, err := limitParam(r, 200, chat.MaxDMPage-1)
	if err != nil {
		return err
	}
	// One more than asked says whether older DMs exist.
	ms, err := s.a.DMsWith(p, r.URL.Query().Get("before"), limit+1)
	if err != nil {
		if errors.Is(err, chat.ErrNotStored) {
			return &httpError{http.StatusNotFound, err}
		}
		return err
	}
	more := len(ms) > limit
	if more {
		ms = ms[1:]
	}
	out := make([]dmJSON, len(ms))
	for i, m := range ms {
		out[i] = dmOut(m)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"messages": out, "more": more})
}

func (s *Server) dm(w http.ResponseWriter, r *http.Request) error {
	var req textBody
	if err := decode(r, &req); err != nil {
		return err
	}
	id, _, err := s.a.SendDM(r.PathValue("peer"), req.Text)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

func (s *Server) dmRead(w http.ResponseWriter, r *http.Request) error {
	p, err := s.peerParam(r)
	if err != nil {
		return err
	}
	if err := s.a.MarkDMsRead(p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) peers(w http.ResponseWriter, _ *http.Request) error {
	type peerJSON struct {
		Peer      string   `json:"peer"`
		Nick      string   `json:"nick"`
		Rooms     []string `json:"rooms"`
		Path      string   `json:"path"`
		Relay     string   `json:"relay,omitempty"`
		Family    string   `json:"family,omitempty"`
		Transport string   `json:"transport,omitempty"`
		Online    bool     `json:"online"`
		Role      string   `json:"role,omitempty"`
		LastSeen  string   `json:"last_seen,omitempty"`
	}
	ps := s.a.Peers()
	out := make([]peerJSON, len(ps))
	for i, p := range ps {
		relay, seen := "", ""
		if p.Relay != "" {
			relay = p.Relay.String()
		}
		if !p.LastSeen.IsZero() {
			seen = p.LastSeen.UTC().Format(time.RFC3339Nano)
		}
		online := p.Path != "" && p.Path != chat.PathNone
		out[i] = peerJSON{p.ID.String(), p.Nick, nonNil(p.Rooms), p.Path, relay, p.Family, p.Transport, online, p.Role, seen}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"peers": out})
}

func (s *Server) nick(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Nick string `json:"nick"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.a.SetNick(req.Nick); err != nil {
		return &httpError{http.StatusBadRequest, err}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"nick": req.Nick})
}

func (s *Server) outbox(w http.ResponseWriter, _ *http.Request) error {
	pending, err := s.a.Outbox()
	if err != nil {
		return err
	}
	type entry struct {
		ID          string `json:"id"`
		To          string `json:"to"`
		Text        string `json:"text"`
		SentAt      string `json:"sent_at"`
		Attempts    int    `json:"attempts"`
		NextAttempt string `json:"next_attempt"`
	}
	out := make([]entry, len(pending))
	for i, p := range pending {
		out[i] = entry{p.ID, p.To.String(), p.Text, p.SentAt.UTC().Format(time.RFC3339Nano), p.Attempts, p.Next.UTC().Format(time.RFC3339Nano)}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"pending": out})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// export sends the node's identity and history as one file, to continue
// with the same peer elsewhere ("take it home").
func (s *Server) export(w http.ResponseWriter, _ *http.Request) error {
	short := s.a.ID().String()
	short = short[max(0, len(short)-6):]
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="parley-`+short+`.tar.gz"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.a.Export(w); err != nil {
		if errors.Is(err, app.ErrNoExport) {
			w.Header().Del("Content-Disposition")
			return &httpError{http.StatusNotFound, err}
		}
		return err
	}
	return nil
}
