package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
)

// Styles. Plain 256-colour codes, never adaptive ones: those would query
// the terminal's background at start.
var (
	dimStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("244"))
	boldStyle     = lipgloss.NewStyle().Bold(true)
	errStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("196"))
	infoStyle     = lipgloss.NewStyle().Foreground(lipgloss.Color("75"))
	mentionStyle  = lipgloss.NewStyle().Foreground(lipgloss.Color("226")).Bold(true)
	okStyle       = lipgloss.NewStyle().Foreground(lipgloss.Color("40"))
	warnStyle     = lipgloss.NewStyle().Foreground(lipgloss.Color("214"))
	selectedStyle = lipgloss.NewStyle().Reverse(true)
	headerStyle   = lipgloss.NewStyle().Bold(true).Underline(true)
	statusStyle   = lipgloss.NewStyle().Background(lipgloss.Color("236")).Foreground(lipgloss.Color("252"))
	statusWarn    = lipgloss.NewStyle().Background(lipgloss.Color("52")).Foreground(lipgloss.Color("230")).Bold(true)
	sepStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("238"))
)

const keyHelp = `keys:
  Enter send · Alt+Enter or Ctrl+J new line · Up/Down sent lines · Tab complete
  Alt+1…9 or Ctrl+N/Ctrl+P or a click: switch conversation
  PgUp/PgDn or the wheel: scroll (older history loads at the top) · Esc: back to the newest
  F2 or Alt+P: people · Ctrl+L: redraw · Ctrl+C, Ctrl+D or /quit: leave
  Shift with the mouse selects text (the UI takes plain clicks and the wheel)`

// geom is where everything goes on a screen of the current size.
type geom struct {
	w, h             int
	listW            int // conversation list (0: hidden on narrow screens)
	convX, convW     int
	peopleX, peopleW int // people pane (0: hidden)
	bodyH            int // rows of the panes, the conversation's header included
	statusY          int
	inputY, inputH   int
	tooSmall         bool
}

// minimum screen the UI draws on.
const minW, minH = 30, 8

func (m *Model) layout() geom {
	g := geom{w: m.width, h: m.height}
	if g.w < minW || g.h < minH {
		g.tooSmall = true
		g.convW = max(g.w, 1)
		return g
	}
	g.inputH = m.inputRows(g.w)
	g.bodyH = g.h - 1 - g.inputH
	g.statusY = g.bodyH
	g.inputY = g.bodyH + 1
	if g.w >= 50 {
		g.listW = min(max(g.w/5, 14), 24)
		g.convX = g.listW + 1
	}
	g.convW = g.w - g.convX
	if m.showPeople {
		pw := min(max(g.w/4, 20), 34)
		if g.convW-pw-1 >= 24 {
			g.peopleW = pw
			g.convW -= pw + 1
			g.peopleX = g.convX + g.convW + 1
		}
	}
	return g
}

// View draws the screen.
func (m *Model) View() string {
	if m.width == 0 || m.height == 0 {
		return ""
	}
	g := m.layout()
	m.g = g
	if g.tooSmall {
		return truncate("too small", g.w) + "\n" + truncate(fmt.Sprintf("need %d×%d", minW, minH), g.w)
	}
	list := m.listView(g)
	convRows := m.convView(g)
	var people []string
	if g.peopleW > 0 {
		people = m.peopleView(g)
	}
	sep := sepStyle.Render("│")
	var b strings.Builder
	b.Grow(g.w * g.h * 2)
	for y := range g.bodyH {
		if g.listW > 0 {
			b.WriteString(list[y])
			b.WriteString(sep)
		}
		b.WriteString(convRows[y])
		if g.peopleW > 0 {
			b.WriteString(sep)
			b.WriteString(people[y])
		}
		b.WriteByte('\n')
	}
	b.WriteString(m.statusView(g))
	b.WriteByte('\n')
	b.WriteString(m.inputView(g))
	return b.String()
}

// listView is the list of rooms and DMs: number for Alt+number, name,
// unread count, "@" when one of them is a mention or a DM.
func (m *Model) listView(g geom) []string {
	rows := make([]string, 0, g.bodyH)
	m.listRows = m.listRows[:0]
	add := func(s string, c *conv) {
		if len(rows) < g.bodyH {
			rows = append(rows, s)
			m.listRows = append(m.listRows, c)
		}
	}
	item := func(n int, c *conv) {
		num := " "
		if n <= 10 {
			num = strconv.Itoa(n % 10)
		}
		badge, bst := "", dimStyle
		if c.unread > 0 {
			badge = strconv.Itoa(c.unread)
			if c.unread > 999 {
				badge = "999+"
			}
			bst = boldStyle
			if c.mention {
				badge, bst = "@"+badge, mentionStyle
			}
		}
		name := truncate(c.title(), max(g.listW-3-width(badge)-1, 1))
		left := num + " " + name
		gap := max(g.listW-width(left)-width(badge), 0)
		if c == m.cur {
			add(selectedStyle.Render(left+strings.Repeat(" ", gap)+badge), c)
			return
		}
		nst := lipgloss.NewStyle()
		if c.unread > 0 {
			nst = boldStyle
		}
		add(dimStyle.Render(num)+" "+nst.Render(name)+strings.Repeat(" ", gap)+bst.Render(badge), c)
	}
	add(fit("Rooms", headerStyle, g.listW), nil)
	n := 1
	for _, c := range m.rooms {
		item(n, c)
		n++
	}
	if len(m.rooms) == 0 {
		add(fit("  /join ROOM", dimStyle, g.listW), nil)
	}
	add(strings.Repeat(" ", g.listW), nil)
	add(fit("Direct", headerStyle, g.listW), nil)
	for _, c := range m.dms {
		item(n, c)
		n++
	}
	if len(m.dms) == 0 {
		add(fit("  /dm PEER TEXT", dimStyle, g.listW), nil)
	}
	for len(rows) < g.bodyH {
		add(strings.Repeat(" ", g.listW), nil)
	}
	return rows
}

// convView is the open conversation: a header, then its newest lines (or
// older ones when scrolled up), at the bottom of the pane.
func (m *Model) convView(g geom) []string {
	c := m.view()
	w := g.convW
	h := g.bodyH - 1
	out := make([]string, 0, g.bodyH)
	out = append(out, m.convHeader(c, w))

	// Clamp a scroll that trimming or a resize left past the top.
	if c.scroll > 0 {
		if maxScroll := max(c.totalRows(m.rowsAt(w))-h, 0); c.scroll > maxScroll {
			c.scroll = maxScroll
		}
	}
	rows := make([]string, h)
	y, skip := h-1, c.scroll
	if c.scroll > 0 {
		more := "↓ newer lines below: PgDn, Esc for the newest"
		if c.unseen > 0 {
			more = fmt.Sprintf("↓ %d new: PgDn, Esc for the newest", c.unseen)
		}
		rows[y] = fit(more, warnStyle, w)
		y--
	}
	for i := len(c.entries) - 1; i >= 0 && y >= 0; i-- {
		er := m.entryRows(c.entries[i], w)
		for j := len(er) - 1; j >= 0 && y >= 0; j-- {
			if skip > 0 {
				skip--
				continue
			}
			rows[y] = er[j]
			y--
		}
	}
	blank := strings.Repeat(" ", w)
	for ; y >= 0; y-- {
		rows[y] = blank
	}
	if y < 0 && c.loading {
		rows[0] = fit("loading older history…", dimStyle, w)
	}
	return append(out, rows...)
}

func (m *Model) convHeader(c *conv, w int) string {
	var parts []string
	switch c.kind {
	case roomConv:
		n := 0
		for _, p := range m.people {
			if p.Path != "" && containsStr(p.Rooms, c.name) {
				n++
			}
		}
		parts = append(parts, "#"+c.name, plural(n, "peer", "peers")+" here")
	case dmConv:
		path := "not connected"
		for _, p := range m.people {
			if p.ID == c.peer && p.Path != "" {
				path = pathText(p)
			}
		}
		parts = append(parts, "DM with "+who(c.nick, c.peer), path)
	default:
		parts = append(parts, "parley", "not in a room: /join ROOM")
	}
	if c.loading {
		parts = append(parts, "loading history…")
	} else if c.kind == roomConv && c.exhausted && c.scroll > 0 {
		parts = append(parts, "start of history reached")
	}
	return fit(strings.Join(parts, " · "), boldStyle, w)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// pathText says how a peer is reached.
func pathText(p chat.PeerInfo) string {
	switch {
	case p.Path == "":
		return "not connected"
	case p.Path == chat.PathNone:
		return p.Path
	case p.Path == chat.PathRelayed && p.Relay != "":
		return "relayed via " + shortID(p.Relay) + route(p)
	}
	return p.Path + route(p)
}

// route names a connection's address family and transport, " ip6/quic".
func route(p chat.PeerInfo) string {
	if p.Family == "" && p.Transport == "" {
		return ""
	}
	return " " + strings.Trim(p.Family+"/"+p.Transport, "/")
}

// peopleView lists the peers of the open room (or the DM's peer): nick,
// short ID, and how each is reached.
func (m *Model) peopleView(g geom) []string {
	w := g.peopleW
	rows := make([]string, 0, g.bodyH)
	m.peopleRows = m.peopleRows[:0]
	add := func(s string, id peer.ID) {
		if len(rows) < g.bodyH {
			rows = append(rows, s)
			m.peopleRows = append(m.peopleRows, id)
		}
	}
	c := m.view()
	var list []chat.PeerInfo
	title := "People"
	for _, p := range m.people {
		switch c.kind {
		case roomConv:
			if containsStr(p.Rooms, c.name) {
				list = append(list, p)
			}
		case dmConv:
			if p.ID == c.peer {
				list = append(list, p)
			}
		default:
			list = append(list, p)
		}
	}
	if c.kind == roomConv {
		title = fmt.Sprintf("People in #%s (%d)", c.name, len(list)+1)
	}
	add(fit(title, headerStyle, w), "")
	add(fit(clean(m.nick)+" "+shortID(m.self)+" (you)", lipgloss.NewStyle().Foreground(peerColor(m.self)), w), "")
	if !m.peersKnown {
		add(fit("  looking…", dimStyle, w), "")
	}
	for _, p := range list {
		id := shortID(p.ID)
		col := lipgloss.NewStyle().Foreground(peerColor(p.ID))
		if nick := truncate(clean(p.Nick), max(w-len(id)-1, 1)); nick != "" {
			add(pad(col.Bold(true).Render(nick)+" "+col.Render(id), width(nick)+1+len(id), w), p.ID)
		} else {
			add(fit(id, col, w), p.ID)
		}
		pst := dimStyle
		if p.Path == "" {
			pst = warnStyle
		}
		add(fit("  "+pathText(p), pst, w), p.ID)
	}
	for len(rows) < g.bodyH {
		add(strings.Repeat(" ", w), "")
	}
	return rows
}

// statusView is the line under the panes: who this node is, how many
// peers it is connected to, its relay, and a warning in plain words when
// it is connected to nobody.
func (m *Model) statusView(g geom) string {
	left := " " + clean(m.nick) + "[" + shortID(m.self) + "]"
	n := m.connected()
	st := statusStyle
	switch {
	case m.quitting:
		left += " · leaving: sending what is pending…"
	case m.peersKnown && n == 0:
		left += " · ⚠ connected to nobody: waiting for peers (LAN, or --bootstrap)"
		st = statusWarn
	default:
		left += " · " + plural(n, "peer", "peers") + " connected"
	}
	if m.relay != "" {
		left += " · relay " + m.relay
	} else {
		left += " · no relay"
	}
	if m.pending > 0 && !m.quitting {
		left += " · sending…"
	}
	right := m.counter() + " "
	if !m.showPeople {
		right = "F2 people " + right
	}
	lw := g.w - width(right)
	if lw < 10 {
		right, lw = "", g.w
	}
	left = truncate(left, lw)
	return st.Render(pad(left, width(left), lw) + right)
}

// counter shows the size of the message being typed against the limit,
// before it is sent.
func (m *Model) counter() string {
	text, ok := m.messageText()
	if !ok || text == "" {
		return ""
	}
	n := len(text)
	if n > chat.MaxTextBytes {
		return fmt.Sprintf("too long: %d/%d bytes", n, chat.MaxTextBytes)
	}
	return fmt.Sprintf("%d/%d", n, chat.MaxTextBytes)
}

// inputView is the prompt and the text being typed.
func (m *Model) inputView(g geom) string {
	prompt := m.prompt()
	pw := width(prompt)
	lines := strings.Split(m.input.View(), "\n")
	var b strings.Builder
	for i := range g.inputH {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i == 0 {
			b.WriteString(boldStyle.Render(prompt))
		} else {
			b.WriteString(strings.Repeat(" ", pw))
		}
		if i < len(lines) {
			l := ansi.Truncate(lines[i], g.w-pw, "")
			b.WriteString(pad(l, width(l), g.w-pw))
		}
	}
	return b.String()
}

func (m *Model) prompt() string {
	c := m.view()
	switch c.kind {
	case roomConv:
		return truncate("#"+c.name, 20) + "> "
	case dmConv:
		return truncate("@"+c.title(), 20) + "> "
	}
	return "> "
}

// rowsAt measures entries at width w.
func (m *Model) rowsAt(w int) func(*entry) int {
	return func(e *entry) int { return len(m.entryRows(e, w)) }
}

// entryRows renders an entry at width w (cached until w or the entry
// changes): a day separator if it starts a day, then its rows, each
// exactly w cells wide.
func (m *Model) entryRows(e *entry, w int) []string {
	if e.rows != nil && e.w == w {
		return e.rows
	}
	var rows []string
	if e.sep {
		label := "── " + e.at.In(m.loc).Format("Monday, 2 January 2006") + " "
		label = truncate(label, w)
		rows = append(rows, dimStyle.Render(label+strings.Repeat("─", max(w-width(label), 0))))
	}
	clock := e.at.In(m.loc).Format("15:04")
	if e.kind != msgEntry {
		st := dimStyle
		switch e.kind {
		case errEntry:
			st = errStyle
		case infoEntry:
			st = infoStyle
		}
		mark := "  "
		if e.kind == errEntry {
			mark = "! "
		}
		indent := 1 + len(clock) + 1 + 2
		for i, l := range m.wrapText(e.text, w-indent, w-indent) {
			if i == 0 {
				rows = append(rows, pad(" "+dimStyle.Render(clock)+" "+st.Render(mark+l), indent+width(l), w))
			} else {
				rows = append(rows, pad(strings.Repeat(" ", indent)+st.Render(l), indent+width(l), w))
			}
		}
		e.w, e.rows = w, rows
		return rows
	}

	gutter, gst := " ", lipgloss.NewStyle()
	switch {
	case e.backfill && e.mention:
		gutter, gst = "┊", mentionStyle
	case e.backfill:
		gutter, gst = "┊", dimStyle
	case e.mention:
		gutter, gst = "▌", mentionStyle
	}
	nick := truncate(clean(e.nick), 20)
	id := "[" + shortID(e.from) + "]"
	col := lipgloss.NewStyle().Foreground(peerColor(e.from))
	mark, mst := "", dimStyle
	switch e.state {
	case dmSending:
		mark = "sending…"
	case dmQueued:
		mark, mst = "queued", warnStyle
	case dmDelivered:
		mark, mst = "✓", okStyle
	}
	prefix := gst.Render(gutter) + dimStyle.Render(clock) + " " + col.Bold(true).Render(nick) + col.Render(id) + " "
	pw := 1 + len(clock) + 1 + width(nick) + len(id) + 1
	if mark != "" {
		prefix += mst.Render(mark) + " "
		pw += width(mark) + 1
	}
	// The text goes beside the name, its next rows under the first one
	// when there is room, else from under the name.
	first, indent := w-pw, pw
	if w-pw < 40 {
		indent = 1 + len(clock) + 1
	}
	if w-pw < 8 {
		rows = append(rows, pad(ansi.Truncate(prefix, w, ""), min(pw, w), w))
		prefix, first = "", w-indent
	}
	type row struct {
		text string
		st   lipgloss.Style
	}
	var text []row
	for _, l := range m.wrapText(e.text, first, w-indent) {
		text = append(text, row{l, lipgloss.NewStyle()})
	}
	if e.state == dmQueued && e.detail != "" {
		for _, l := range m.wrapText(truncate(clean("not delivered yet ("+e.detail+"): kept, and retried when the peer is back"), 120), w-indent, w-indent) {
			text = append(text, row{l, warnStyle})
		}
	}
	for i, r := range text {
		lead := strings.Repeat(" ", indent)
		if i == 0 && prefix != "" {
			lead = prefix
		} else if e.backfill || e.mention {
			lead = gst.Render(gutter) + strings.Repeat(" ", indent-1)
		}
		lw := indent
		if i == 0 && prefix != "" {
			lw = pw
		}
		rows = append(rows, pad(lead+r.st.Render(r.text), lw+width(r.text), w))
	}
	e.w, e.rows = w, rows
	return rows
}

// wrapText cleans a message and wraps it: first cells for its first
// row, rest for the others.
func (m *Model) wrapText(text string, first, rest int) []string {
	var out []string
	for i, l := range cleanLines(text) {
		if i > 0 {
			first = rest
		}
		out = append(out, wrap(l, first, rest)...)
	}
	return out
}
