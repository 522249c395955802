package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

// Renderer turns what happens into output: JSON objects or text lines.
type Renderer interface {
	Event(ev chat.Event) string
	Ready(r Ready) string
	Result(res app.Result) string
	Error(err error) string
}

// result renders a command's result with r's parts.
func result(r interface {
	Sent(res app.Sent) string
	Peers(self peer.ID, ps []chat.PeerInfo) string
	Rooms(current string, rooms []string) string
	Outbox(pending []chat.PendingDM) string
	Info(msg string) string
	Route(r app.Route) string
	Invite(inv app.Invite) string
}, res app.Result) string {
	switch res := res.(type) {
	case app.Sent:
		return r.Sent(res)
	case app.RoomList:
		return r.Rooms(res.Current, res.Rooms)
	case app.PeerList:
		return r.Peers(res.Self, res.Peers)
	case app.OutboxList:
		return r.Outbox(res.Pending)
	case app.Info:
		return r.Info(res.Text)
	case app.Route:
		return r.Route(res)
	case app.Invite:
		return r.Invite(res)
	}
	return ""
}

// Route explains how a peer is reached (/why), in lines.
func (Text) Route(r app.Route) string { return strings.Join(r.Explain(time.Now()), "\n") }

// Route is the answer to {"cmd":"why","to":PEER}: how the peer is reached.
func (JSON) Route(r app.Route) string {
	type conn struct {
		Remote    string  `json:"remote"`
		Direction string  `json:"direction"`
		Relayed   bool    `json:"relayed"`
		AgeS      float64 `json:"age_s"`
	}
	type punch struct {
		At        string  `json:"at"`
		Kind      string  `json:"kind"`
		Success   bool    `json:"success"`
		Attempts  int     `json:"attempts,omitempty"`
		ElapsedMs float64 `json:"elapsed_ms"`
		Error     string  `json:"error,omitempty"`
	}
	conns := []conn{}
	for _, c := range r.Conns {
		conns = append(conns, conn{c.Remote, c.Direction, c.Relayed, c.Age.Seconds()})
	}
	var last *punch
	if p := r.LastPunch; p != nil {
		last = &punch{p.At.UTC().Format(time.RFC3339Nano), p.Kind, p.Success, p.Attempts, float64(p.Elapsed.Microseconds()) / 1000, p.Err}
	}
	path := r.Path
	if path == "" {
		path = chat.PathNone
	}
	return encode(struct {
		Event       string   `json:"event"`
		Peer        string   `json:"peer"`
		Nick        string   `json:"nick,omitempty"`
		Path        string   `json:"path"`
		Relay       string   `json:"relay,omitempty"`
		RTTMs       float64  `json:"rtt_ms,omitempty"`
		DCUtR       bool     `json:"dcutr"`
		Conns       []conn   `json:"connections"`
		LastPunch   *punch   `json:"last_punch,omitempty"`
		Explanation []string `json:"explanation"`
	}{"why", r.Peer.String(), r.Nick, path, idOrEmpty(r.Relay), float64(r.RTT.Microseconds()) / 1000, r.DCUtR, conns, last, r.Explain(time.Now())})
}

// Result renders a command's result.
func (j JSON) Result(res app.Result) string { return result(j, res) }

// Result renders a command's result.
func (t Text) Result(res app.Result) string { return result(t, res) }

// Ready describes a node that listens and has joined its rooms.
type Ready struct {
	Peer    peer.ID
	Nick    string
	Addrs   []string
	Rooms   []string
	Web     string // the web app's URL, when served
	Log     string // the log file, when the log does not go to stderr
	Metrics string // the Prometheus metrics URL, with --metrics
}

// JSON renders one object per line, as documented in the README.
type JSON struct{}

type jsonMessage struct {
	Event      string `json:"event"`
	Room       string `json:"room,omitempty"`
	ID         string `json:"id"`
	From       string `json:"from"`
	Nick       string `json:"nick"`
	Text       string `json:"text"`
	SentAt     string `json:"sent_at"`
	Backfill   bool   `json:"backfill,omitempty"`
	Unreceived bool   `json:"unreceived,omitempty"`
}

type jsonPeer struct {
	Peer      string   `json:"peer"`
	Nick      string   `json:"nick,omitempty"`
	Rooms     []string `json:"rooms"`
	Path      string   `json:"path"`
	Relay     string   `json:"relay,omitempty"`
	Family    string   `json:"family,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Role      string   `json:"role,omitempty"`
	LastSeen  string   `json:"last_seen,omitempty"`
}

func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"event": "error", "error": "encode event: " + err.Error()})
	}
	return string(b)
}

func idOrEmpty(p peer.ID) string {
	if p == "" {
		return ""
	}
	return p.String()
}

func (j JSON) Event(ev chat.Event) string {
	switch e := ev.(type) {
	case chat.Message:
		return encode(jsonMessage{"message", e.Room, e.ID, e.From.String(), e.Nick, e.Text, e.SentAt.UTC().Format(time.RFC3339Nano), e.Backfill, e.Unreceived})
	case chat.DirectMessage:
		return encode(jsonMessage{"dm", "", e.ID, e.From.String(), e.Nick, e.Text, e.SentAt.UTC().Format(time.RFC3339Nano), false, false})
	case chat.Queued:
		return encode(struct {
			Event string `json:"event"`
			ID    string `json:"id"`
			To    string `json:"to"`
			Error string `json:"error"`
		}{"queued", e.ID, e.To.String(), e.Err.Error()})
	case chat.Delivered:
		return encode(struct {
			Event string `json:"event"`
			ID    string `json:"id"`
			To    string `json:"to"`
		}{"delivered", e.ID, e.To.String()})
	case chat.PeerJoined:
		return encode(struct {
			Event string `json:"event"`
			Room  string `json:"room"`
			Peer  string `json:"peer"`
			Nick  string `json:"nick,omitempty"`
			Role  string `json:"role,omitempty"`
		}{"peer-joined", e.Room, e.Peer.String(), e.Nick, e.Role})
	case chat.PeerLeft:
		return encode(struct {
			Event string `json:"event"`
			Room  string `json:"room"`
			Peer  string `json:"peer"`
			Nick  string `json:"nick,omitempty"`
			Role  string `json:"role,omitempty"`
		}{"peer-left", e.Room, e.Peer.String(), e.Nick, e.Role})
	case chat.Received:
		return encode(struct {
			Event string   `json:"event"`
			Room  string   `json:"room"`
			IDs   []string `json:"ids"`
			By    string   `json:"by"`
			Role  string   `json:"role,omitempty"`
		}{"received", e.Room, nonNil(e.IDs), e.By.String(), e.Role})
	case chat.HistoryShown:
		return encode(struct {
			Event    string `json:"event"`
			Room     string `json:"room"`
			Shown    int    `json:"shown"`
			Hidden   int    `json:"hidden"`
			CaughtUp bool   `json:"caught_up"`
		}{"history", e.Room, e.Shown, e.Hidden, e.CaughtUp})
	case chat.NickChanged:
		return encode(struct {
			Event string `json:"event"`
			Room  string `json:"room"`
			Peer  string `json:"peer"`
			Old   string `json:"old"`
			Nick  string `json:"nick"`
		}{"nick", e.Room, e.Peer.String(), e.Old, e.New})
	case chat.Connection:
		return encode(struct {
			Event     string `json:"event"`
			Peer      string `json:"peer"`
			Path      string `json:"path"`
			Relay     string `json:"relay,omitempty"`
			Family    string `json:"family,omitempty"`
			Transport string `json:"transport,omitempty"`
			Role      string `json:"role,omitempty"`
		}{"connection", e.Peer.String(), e.Path, idOrEmpty(e.Relay), e.Family, e.Transport, e.Role})
	case chat.HolePunch:
		return encode(struct {
			Event     string `json:"event"`
			Peer      string `json:"peer"`
			OK        bool   `json:"ok"`
			Attempts  int    `json:"attempts"`
			ElapsedMS int64  `json:"elapsed_ms"`
			Family    string `json:"family,omitempty"`
			Transport string `json:"transport,omitempty"`
			Error     string `json:"error,omitempty"`
		}{"hole-punch", e.Peer.String(), e.OK, e.Attempts, e.Elapsed.Milliseconds(), e.Family, e.Transport, e.Err})
	case chat.RelayReservation:
		return encode(struct {
			Event string   `json:"event"`
			Addrs []string `json:"addrs"`
		}{"relay-reservation", nonNil(e.Addrs)})
	case chat.Notice:
		return j.Info(e.Text)
	case chat.Error:
		return encode(struct {
			Event string `json:"event"`
			Error string `json:"error"`
			ID    string `json:"id,omitempty"`
		}{"error", e.Err.Error(), e.ID})
	}
	return ""
}

func (JSON) Ready(r Ready) string {
	return encode(struct {
		Event   string   `json:"event"`
		Peer    string   `json:"peer"`
		Nick    string   `json:"nick,omitempty"`
		Addrs   []string `json:"addrs"`
		Rooms   []string `json:"rooms"`
		Web     string   `json:"web,omitempty"`
		Metrics string   `json:"metrics,omitempty"`
	}{"ready", r.Peer.String(), r.Nick, nonNil(r.Addrs), nonNil(r.Rooms), r.Web, r.Metrics})
}

func (JSON) Sent(res app.Sent) string {
	return encode(struct {
		Event string   `json:"event"`
		ID    string   `json:"id"`
		Room  string   `json:"room,omitempty"`
		To    string   `json:"to,omitempty"`
		IDs   []string `json:"ids,omitempty"`
	}{"sent", res.ID, res.Room, idOrEmpty(res.To), res.IDs})
}

func (JSON) Peers(_ peer.ID, ps []chat.PeerInfo) string {
	out := make([]jsonPeer, len(ps))
	for i, p := range ps {
		path := p.Path
		if path == "" {
			path = chat.PathNone
		}
		seen := ""
		if !p.LastSeen.IsZero() {
			seen = p.LastSeen.UTC().Format(time.RFC3339Nano)
		}
		out[i] = jsonPeer{p.ID.String(), p.Nick, nonNil(p.Rooms), path, idOrEmpty(p.Relay), p.Family, p.Transport, p.Role, seen}
	}
	return encode(struct {
		Event string     `json:"event"`
		Peers []jsonPeer `json:"peers"`
	}{"peers", out})
}

func (JSON) Rooms(current string, rooms []string) string {
	return encode(struct {
		Event   string   `json:"event"`
		Current string   `json:"current"`
		Rooms   []string `json:"rooms"`
	}{"rooms", current, nonNil(rooms)})
}

func (JSON) Outbox(pending []chat.PendingDM) string {
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
	return encode(struct {
		Event   string  `json:"event"`
		Pending []entry `json:"pending"`
	}{"outbox", out})
}

// Invite is {"event":"invite","room":ROOM,"link":LINK}.
func (JSON) Invite(inv app.Invite) string {
	return encode(struct {
		Event   string `json:"event"`
		Room    string `json:"room"`
		Link    string `json:"link"`
		Private bool   `json:"private,omitempty"`
	}{"invite", inv.Room, inv.Link, inv.Private})
}

// Invite shows the link on a line of its own, easy to copy.
func (Text) Invite(inv app.Invite) string {
	what := "invite to #" + inv.Room + " (they run: parley join LINK, or type /join LINK):"
	if inv.Private {
		what = "invite to the private room #" + inv.Room + " — whoever has this link can read the room; send it only to members:"
	}
	return what + "\n" + inv.Link
}

func (JSON) Info(msg string) string {
	return encode(struct {
		Event string `json:"event"`
		Text  string `json:"text"`
	}{"info", msg})
}

func (JSON) Error(err error) string {
	return encode(struct {
		Event string `json:"event"`
		Error string `json:"error"`
	}{"error", err.Error()})
}

// tries says "1 try" or "3 tries".
func tries(n int) string {
	if n == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", n)
}

// plural says "1 thing" or "2 things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Text renders human-readable lines. Every sender is shown by nick and the
// end of its peer ID, because the nick alone is whatever the sender chose.
type Text struct {
	// Current returns the current room; its messages omit the room name.
	Current func() string
	// Local is the time zone of displayed times.
	Local *time.Location
}

// Who formats a peer as nick[last 6 characters of the peer ID].
func Who(nick string, id peer.ID) string {
	s := id.String()
	short := s[max(0, len(s)-6):]
	if nick == "" {
		return "[" + short + "]"
	}
	return nick + "[" + short + "]"
}

// WhoRole formats a peer with its role: a relay as "the relay [6Bhwec]"
// (no nick can look like that: nicks have no spaces), anyone else as Who.
func WhoRole(role, nick string, id peer.ID) string {
	if role == chat.RoleRelay {
		return "the relay " + Who("", id)
	}
	return Who(nick, id)
}

func (t Text) clock(ts time.Time) string {
	loc := t.Local
	if loc == nil {
		loc = time.Local
	}
	return ts.In(loc).Format("15:04")
}

func (t Text) date(ts time.Time) string {
	loc := t.Local
	if loc == nil {
		loc = time.Local
	}
	return ts.In(loc).Format("Jan 2 15:04")
}

// indent keeps the lines of a multi-line message under its first line.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n        ") }

func (t Text) Event(ev chat.Event) string {
	switch e := ev.(type) {
	case chat.Message:
		room := ""
		if t.Current == nil || e.Room != t.Current() {
			room = "#" + e.Room + " "
		}
		clock := t.clock(e.SentAt)
		if e.Backfill {
			// History can be days old: show the date too.
			clock = t.date(e.SentAt)
		}
		line := fmt.Sprintf("[%s] %s<%s> %s", clock, room, Who(e.Nick, e.From), indent(e.Text))
		if e.Unreceived {
			line += "\n  (no one in #" + e.Room + " has received this yet)"
		}
		return line
	case chat.DirectMessage:
		return fmt.Sprintf("[%s] *dm* <%s> %s", t.clock(e.SentAt), Who(e.Nick, e.From), indent(e.Text))
	case chat.Queued:
		if errors.Is(e.Err, chat.ErrOffline) {
			return fmt.Sprintf("  … %s is offline: the DM is queued and will be retried", Who(e.Nick, e.To))
		}
		return fmt.Sprintf("  … %s did not confirm the DM: it is queued and will be retried", Who(e.Nick, e.To))
	case chat.Delivered:
		return fmt.Sprintf("  ✓ dm %s delivered to %s", e.ID[:min(8, len(e.ID))], Who(e.Nick, e.To))
	case chat.PeerJoined:
		if e.Role == chat.RoleRelay {
			return fmt.Sprintf("* %s carries #%s", WhoRole(e.Role, "", e.Peer), e.Room)
		}
		return fmt.Sprintf("* %s joined #%s", Who(e.Nick, e.Peer), e.Room)
	case chat.PeerLeft:
		if e.Role == chat.RoleRelay {
			return fmt.Sprintf("* %s no longer carries #%s", WhoRole(e.Role, "", e.Peer), e.Room)
		}
		return fmt.Sprintf("* %s left #%s", Who(e.Nick, e.Peer), e.Room)
	case chat.Received:
		what := "your message"
		if len(e.IDs) > 1 {
			what = fmt.Sprintf("your %d messages", len(e.IDs))
		}
		return fmt.Sprintf("  ✓ %s in #%s that no one had received reached %s", what, e.Room, WhoRole(e.Role, e.Nick, e.By))
	case chat.HistoryShown:
		room := ""
		if t.Current == nil || e.Room != t.Current() {
			room = "#" + e.Room + ": "
		}
		if !e.CaughtUp {
			return "──── " + room + "new since you left ────"
		}
		switch {
		case e.Hidden == 0:
			return ""
		case e.Shown == 0:
			return fmt.Sprintf("  (%s%s caught up and stored, not shown)", room, plural(e.Hidden, "missed message"))
		default:
			return fmt.Sprintf("  (%s%s caught up, the newest %d shown above; the rest are stored)", room, plural(e.Shown+e.Hidden, "missed message"), e.Shown)
		}
	case chat.NickChanged:
		if e.Self {
			return "" // the /nick that did it says so ("you are now …")
		}
		room := ""
		if t.Current == nil || e.Room != t.Current() {
			room = "#" + e.Room + " "
		}
		old := e.Old
		if old == "" {
			old = Who("", e.Peer)
		}
		return fmt.Sprintf("* %s%s is now %s", room, old, Who(e.New, e.Peer))
	case chat.Connection:
		who := WhoRole(e.Role, "", e.Peer)
		if e.Relay != "" {
			return fmt.Sprintf("* %s reached %s via %s%s", who, e.Path, WhoRole(chat.RoleRelay, "", e.Relay), over(e.Family, e.Transport))
		}
		return fmt.Sprintf("* %s reached: %s%s", who, e.Path, over(e.Family, e.Transport))
	case chat.HolePunch:
		who := Who("", e.Peer)
		if e.OK {
			return fmt.Sprintf("* hole punching to %s worked: direct%s after %s", who, over(e.Family, e.Transport), tries(e.Attempts))
		}
		reason := ""
		if e.Err != "" {
			reason = " (" + oneLine(e.Err) + ")"
		}
		return fmt.Sprintf("* hole punching to %s failed after %s%s: still relayed, will try again", who, tries(e.Attempts), reason)
	case chat.RelayReservation:
		if len(e.Addrs) == 0 {
			return "* no relay reservation any more (reachable directly, or no relay answers)"
		}
		return "* reachable through a relay: " + strings.Join(e.Addrs, " ")
	case chat.Notice:
		return e.Text
	case chat.Error:
		return "! " + oneLine(e.Err.Error())
	}
	return ""
}

func (t Text) Ready(r Ready) string {
	var b strings.Builder
	fmt.Fprintf(&b, "parley: you are %s (%s)\n", r.Nick, r.Peer)
	b.WriteString("listening on:\n")
	for _, a := range r.Addrs {
		b.WriteString("  " + a + "\n")
	}
	if r.Log != "" {
		fmt.Fprintf(&b, "log: %s\n", r.Log)
	}
	if r.Metrics != "" {
		fmt.Fprintf(&b, "metrics: %s\n", r.Metrics)
	}
	fmt.Fprintf(&b, "in rooms: %s — type to chat, /help for commands", strings.Join(r.Rooms, ", "))
	return b.String()
}

// Sent says nothing for one message (it comes back as a message, a DM as
// "delivered"), and that a long text was split.
func (Text) Sent(res app.Sent) string {
	if len(res.IDs) < 2 {
		return ""
	}
	return fmt.Sprintf("  (the text was sent as %d messages: one message holds at most %d bytes)", len(res.IDs), chat.MaxTextBytes)
}

// Peers lists who is in your rooms now, the relays, other connected
// peers, and who was seen recently but is in none of your rooms now.
func (t Text) Peers(self peer.ID, ps []chat.PeerInfo) string {
	var in, relays, other, recent []chat.PeerInfo
	for _, p := range ps {
		switch {
		case p.Role == chat.RoleRelay:
			relays = append(relays, p)
		case len(p.Rooms) > 0:
			in = append(in, p)
		case p.Path != chat.PathNone && p.Path != "":
			other = append(other, p)
		default:
			recent = append(recent, p)
		}
	}
	if len(ps) == 0 {
		return "no peers yet"
	}
	var b strings.Builder
	section := func(title string, list []chat.PeerInfo, row func(chat.PeerInfo) string) {
		if len(list) == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(title)
		for _, p := range list {
			b.WriteString("\n  " + row(p))
		}
	}
	section("in your rooms now:", in, func(p chat.PeerInfo) string {
		return fmt.Sprintf("%-18s %s  %s", Who(p.Nick, p.ID), "#"+strings.Join(p.Rooms, " #"), pathText(p))
	})
	if len(in) == 0 {
		b.WriteString("in your rooms now: nobody else")
	}
	section("relays:", relays, func(p chat.PeerInfo) string {
		carries := "no room of yours"
		if len(p.Rooms) > 0 {
			carries = "#" + strings.Join(p.Rooms, " #")
		}
		return fmt.Sprintf("%s carries %s  %s", WhoRole(p.Role, "", p.ID), carries, pathText(p))
	})
	section("connected, in none of your rooms:", other, func(p chat.PeerInfo) string {
		return fmt.Sprintf("%-18s %s", Who(p.Nick, p.ID), pathText(p))
	})
	section("seen recently, not in your rooms now:", recent, func(p chat.PeerInfo) string {
		return fmt.Sprintf("%-18s last seen %s  %s", Who(p.Nick, p.ID), t.when(p.LastSeen), pathText(p))
	})
	return b.String()
}

// pathText says how a peer is reached, as /peers shows it: "hole-punched
// over ip6/quic", "relayed via the relay [6Bhwec] over ip4/tcp".
func pathText(p chat.PeerInfo) string {
	switch {
	case p.Path == "" || p.Path == chat.PathNone:
		return chat.PathNone
	case p.Relay != "":
		return p.Path + " via " + WhoRole(chat.RoleRelay, "", p.Relay) + over(p.Family, p.Transport)
	}
	return p.Path + over(p.Family, p.Transport)
}

// over names an address family and transport, " over ip4/tcp", or
// nothing when neither is known.
func over(family, transport string) string {
	switch {
	case family != "" && transport != "":
		return " over " + family + "/" + transport
	case family != "" || transport != "":
		return " over " + family + transport
	}
	return ""
}

// when shows a time of today as 15:04, an earlier one with its date.
func (t Text) when(ts time.Time) string {
	loc := t.Local
	if loc == nil {
		loc = time.Local
	}
	y, m, d := ts.In(loc).Date()
	ny, nm, nd := time.Now().In(loc).Date()
	if y == ny && m == nm && d == nd {
		return t.clock(ts)
	}
	return t.date(ts)
}

func (Text) Rooms(current string, rooms []string) string {
	if len(rooms) == 0 {
		return "not in any room; /join ROOM"
	}
	return fmt.Sprintf("current room: #%s; joined: #%s", current, strings.Join(rooms, " #"))
}

func (t Text) Outbox(pending []chat.PendingDM) string {
	if len(pending) == 0 {
		return "outbox empty: every DM was delivered"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s waiting for delivery:", plural(len(pending), "DM"))
	for _, p := range pending {
		tries := fmt.Sprintf("%d tries", p.Attempts)
		if p.Attempts == 1 {
			tries = "1 try"
		}
		fmt.Fprintf(&b, "\n  %s to %s (%s, next %s): %s", p.ID[:min(8, len(p.ID))], Who("", p.To), tries, t.clock(p.Next), p.Text)
	}
	return b.String()
}

func (Text) Info(msg string) string { return msg }

func (Text) Error(err error) string { return "! " + oneLine(err.Error()) }

// oneLine keeps the first line of an error: a person reads one sentence
// (chat logs the details); a library's multi-line error never fills the
// screen.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i]) + " …"
	}
	return s
}
