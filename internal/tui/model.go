package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/ui"
)

// historyPage is how many older messages one scroll past the top loads.
const historyPage = 100

// Messages the model handles besides the terminal's.
type (
	// eventsMsg is a batch of the node's events, in order. leaving says
	// that the program was asked to end before they were read: notices
	// from then on are printed again after the screen is restored.
	eventsMsg struct {
		events  []chat.Event
		leaving bool
	}
	// closedMsg: the service closed the subscription (the program is
	// ending, or ended); nothing more will come.
	closedMsg struct{}
	// gapMsg: some events were lost (the UI fell behind by more than the
	// bus's replay buffer).
	gapMsg struct{}
	// logMsg carries log lines that would otherwise garble the screen.
	logMsg []string
	// refreshMsg asks for a fresh peer list (a ticker sends it, since not
	// every change of a connection has an event).
	refreshMsg struct{}

	resultMsg struct {
		origin string // key of the conversation the command was typed in
		cmd    app.Command
		res    app.Result
		err    error
		nick   string
	}
	historyMsg struct {
		room, before string
		msgs         []chat.Message
		err          error
	}
	peersMsg struct {
		peers []chat.PeerInfo
		err   error
	}
	quitMsg struct{}
)

// Model is the terminal UI: bubbletea drives it with the terminal's keys,
// mouse and size, and with the node's events (eventsMsg); it asks the
// Backend for everything else through commands, so Update never waits.
type Model struct {
	b    Backend
	ctx  context.Context
	self peer.ID
	nick string
	loc  *time.Location
	now  func() time.Time

	rooms []*conv // sorted by name
	dms   []*conv // in the order they started
	sys   *conv   // shown while no room or DM is open
	cur   *conv

	people     []chat.PeerInfo
	peersKnown bool
	peersBusy  bool
	peersDirty bool
	relay      string // short ID of the relay this node is reachable through

	input   textarea.Model
	history []string // lines sent, oldest first
	histPos int      // len(history) while editing a new line
	draft   string   // the new line, while browsing history
	comp    *completion

	width, height int
	showPeople    bool

	quitting  bool
	exitNotes []string // notices and errors while leaving: printed after the screen is restored

	pending int           // commands not answered yet
	tail    chan struct{} // closed when the last command queued has run: commands run in order
	early   map[string]earlyDM

	// From the last View, for the mouse.
	g          geom
	listRows   []*conv
	peopleRows []peer.ID
}

// earlyDM is the state of a DM whose event came before its Sent result.
type earlyDM struct {
	state  dmState
	detail string
}

// New makes the model of a node with the given rooms (the first is open).
func New(ctx context.Context, b Backend, rooms []string) *Model {
	m := &Model{
		b:     b,
		ctx:   ctx,
		self:  b.ID(),
		nick:  b.Nick(),
		loc:   time.Local,
		now:   time.Now,
		early: make(map[string]earlyDM),
		input: newInput(),
	}
	m.sys = newConv(sysConv, "", m.loc)
	for _, r := range rooms {
		m.room(r)
	}
	if len(rooms) > 0 {
		m.cur = m.room(rooms[0])
	}
	return m
}

// welcome says who this node is and where it listens, as the line
// mode's first lines do: the full peer ID and an address are what another
// person needs to reach this node.
func (m *Model) welcome(addrs []string) {
	text := "you are " + who(m.nick, m.self) + ", peer ID " + m.self.String()
	if len(addrs) > 0 {
		text += "\nlistening on:\n  " + strings.Join(addrs, "\n  ")
	}
	m.line(m.view(), infoEntry, text+"\n/help lists the commands and keys; ┊ marks history")
}

// Init asks for the peer list.
func (m *Model) Init() tea.Cmd { return m.refreshPeers() }

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.fitInput()
		return m, nil
	case tea.KeyMsg:
		return m, m.key(msg)
	case tea.MouseMsg:
		return m, m.mouse(msg)
	case eventsMsg:
		return m, m.events(msg)
	case resultMsg:
		return m, m.result(msg)
	case historyMsg:
		m.historyPage(msg)
	case peersMsg:
		return m, m.peers(msg)
	case logMsg:
		for _, l := range msg {
			m.line(m.view(), dimEntry, "log: "+l)
		}
	case refreshMsg:
		return m, m.refreshPeers()
	case gapMsg:
		m.line(m.view(), errEntry, "this window fell behind and missed some events; scroll up to reload history, /peers shows who is here")
		for _, c := range m.rooms {
			c.exhausted = false
		}
	case quitMsg:
		m.quitting = true
	case closedMsg:
		m.quitting = true
		return m, tea.Quit
	}
	return m, nil
}

// view is the conversation on screen.
func (m *Model) view() *conv {
	if m.cur != nil {
		return m.cur
	}
	return m.sys
}

// convs lists the conversations in the order of the list: rooms, then DMs.
func (m *Model) convs() []*conv {
	return append(slices.Clip(m.rooms), m.dms...)
}

func (m *Model) byKey(key string) *conv {
	if key == "" {
		return m.sys
	}
	for _, c := range m.convs() {
		if c.key() == key {
			return c
		}
	}
	return nil
}

// room returns the conversation of room, adding it if new.
func (m *Model) room(name string) *conv {
	i, found := slices.BinarySearchFunc(m.rooms, name, func(c *conv, n string) int { return strings.Compare(c.name, n) })
	if found {
		return m.rooms[i]
	}
	c := newConv(roomConv, name, m.loc)
	m.rooms = slices.Insert(m.rooms, i, c)
	return c
}

func (m *Model) findDM(p peer.ID) *conv {
	for _, c := range m.dms {
		if c.peer == p {
			return c
		}
	}
	return nil
}

// dm returns the conversation with p, adding it if new.
func (m *Model) dm(p peer.ID, nick string) *conv {
	c := m.findDM(p)
	if c == nil {
		c = newConv(dmConv, p.String(), m.loc)
		c.peer = p
		m.dms = append(m.dms, c)
	}
	if nick != "" {
		c.nick = nick
	}
	return c
}

// nickOf is the last known nick of p.
func (m *Model) nickOf(p peer.ID) string {
	for _, pi := range m.people {
		if pi.ID == p {
			return pi.Nick
		}
	}
	return ""
}

// open makes c the conversation on screen.
func (m *Model) open(c *conv) {
	if c == nil {
		return
	}
	m.cur = c
	c.unread, c.mention = 0, false
	m.comp = nil
}

// rowsFn measures entries at the conversation pane's current width.
func (m *Model) rowsFn() func(*entry) int {
	w := m.layout().convW
	return func(e *entry) int { return len(m.entryRows(e, w)) }
}

func (m *Model) add(c *conv, e *entry) bool { return c.add(e, m.rowsFn()) }

// line adds a line of the UI's own to c.
func (m *Model) line(c *conv, kind entryKind, text string) {
	if c == nil {
		c = m.view()
	}
	m.add(c, &entry{kind: kind, at: m.now(), text: text})
	if m.quitting && (kind == errEntry || kind == infoEntry) {
		m.exitNotes = append(m.exitNotes, text)
	}
}

func (m *Model) events(evs eventsMsg) tea.Cmd {
	refresh := false
	if evs.leaving {
		m.quitting = true
	}
	for _, ev := range evs.events {
		switch e := ev.(type) {
		case chat.Message:
			c := m.room(e.Room)
			en := messageEntry(e, m.self, m.nick)
			if m.add(c, en) && c != m.cur && !e.Backfill && !en.own {
				c.unread++
				c.mention = c.mention || en.mention
			}
		case chat.DirectMessage:
			c := m.dm(e.From, e.Nick)
			en := &entry{kind: msgEntry, at: e.SentAt, id: e.ID, from: e.From, nick: e.Nick, text: e.Text}
			if m.add(c, en) && c != m.cur {
				c.unread++
				c.mention = true
			}
		case chat.Queued:
			detail := ""
			if e.Err != nil {
				// The first clause ("peer unreachable"); libp2p's
				// causes that follow run over several lines.
				detail, _, _ = strings.Cut(e.Err.Error(), ": ")
			}
			m.dmState(e.ID, e.To, dmQueued, detail)
		case chat.Delivered:
			m.dmState(e.ID, e.To, dmDelivered, "")
		case chat.PeerJoined:
			if e.Nick == "" {
				e.Nick = m.nickOf(e.Peer)
			}
			m.add(m.room(e.Room), &entry{kind: dimEntry, at: m.now(), text: "→ " + who(e.Nick, e.Peer) + " joined #" + e.Room})
			refresh = true
		case chat.PeerLeft:
			if e.Nick == "" {
				e.Nick = m.nickOf(e.Peer)
			}
			if slices.ContainsFunc(m.rooms, func(c *conv) bool { return c.name == e.Room }) {
				m.add(m.room(e.Room), &entry{kind: dimEntry, at: m.now(), text: "← " + who(e.Nick, e.Peer) + " left #" + e.Room})
			}
			refresh = true
		case chat.Connection:
			refresh = true
		case chat.RelayReservation:
			if r := relayOf(e.Addrs); r != "" {
				m.relay = r
			}
		case chat.Notice:
			m.line(m.view(), infoEntry, e.Text)
		case chat.Error:
			c := m.view()
			for _, d := range m.dms {
				if e.ID != "" && d.find(e.ID) != nil {
					c = d
				}
			}
			m.line(c, errEntry, e.Err.Error())
		}
	}
	if refresh {
		return m.refreshPeers()
	}
	return nil
}

// dmState records what happened to one of this node's DMs.
func (m *Model) dmState(id string, to peer.ID, st dmState, detail string) {
	if c := m.findDM(to); c != nil {
		if e := c.find(id); e != nil {
			if e.state != dmDelivered {
				e.state, e.detail = st, detail
				e.invalidate()
			}
			return
		}
	}
	if m.pending > 0 {
		// Its Sent result may still be on its way.
		if old, ok := m.early[id]; !ok || old.state < st {
			m.early[id] = earlyDM{st, detail}
		}
		return
	}
	if st == dmDelivered {
		// A DM from an earlier run (or another front end) left the outbox.
		m.line(m.dm(to, ""), infoEntry, fmt.Sprintf("✓ an earlier DM (%s) was delivered", id[:min(8, len(id))]))
	}
}

// relayOf is the short ID of the relay in circuit addresses
// (/…/p2p/RELAY/p2p-circuit).
func relayOf(addrs []string) string {
	for _, a := range addrs {
		parts := strings.Split(a, "/")
		for i := 0; i+2 < len(parts); i++ {
			if parts[i] == "p2p" && parts[i+2] == "p2p-circuit" {
				if id, err := peer.Decode(parts[i+1]); err == nil {
					return shortID(id)
				}
			}
		}
	}
	if len(addrs) > 0 {
		return "yes"
	}
	return ""
}

// who formats a peer as the line mode does: nick[short ID].
func who(nick string, p peer.ID) string { return ui.Who(clean(nick), p) }

// run queues cmd: commands run one at a time in the order typed, so a
// room message waiting for the network never lets a later one overtake it.
func (m *Model) run(origin *conv, cmd app.Command) tea.Cmd {
	prev, done := m.tail, make(chan struct{})
	m.tail = done
	m.pending++
	b, ctx, key := m.b, m.ctx, origin.key()
	return func() tea.Msg {
		if prev != nil {
			<-prev
		}
		defer close(done)
		res, err := b.Execute(ctx, cmd)
		return resultMsg{origin: key, cmd: cmd, res: res, err: err, nick: b.Nick()}
	}
}

func (m *Model) result(r resultMsg) tea.Cmd {
	m.pending--
	if r.nick != "" {
		m.nick = r.nick
	}
	origin := m.byKey(r.origin)
	if origin == nil {
		origin = m.view()
	}
	if r.err != nil {
		if r.cmd.Kind == app.Join && errors.Is(r.err, chat.ErrAlreadyInRoom) {
			m.open(m.room(r.cmd.Room)) // /join of a joined room opens it
			return nil
		}
		m.line(origin, errEntry, r.err.Error())
		return nil
	}
	switch res := r.res.(type) {
	case app.Sent:
		if res.To == "" {
			return nil
		}
		c := m.dm(res.To, m.nickOf(res.To))
		e := &entry{kind: msgEntry, at: m.now(), id: res.ID, from: m.self, nick: m.nick, text: r.cmd.Text, own: true, state: dmSending}
		if early, ok := m.early[res.ID]; ok {
			e.state, e.detail = early.state, early.detail
			delete(m.early, res.ID)
		}
		m.add(c, e)
		if c != origin {
			m.line(origin, infoEntry, "DM to "+who(c.nick, res.To)+" sent: see "+c.title()+" in the list")
		}
	case app.RoomList:
		m.syncRooms(res)
		switch {
		case r.cmd.Kind == app.Join && res.Current != "":
			m.open(m.room(res.Current)) // also the room of an invite link
		case r.cmd.Kind == app.Switch && r.cmd.Room != "":
			m.open(m.room(r.cmd.Room))
		case r.cmd.Kind == app.Leave:
			if m.cur == nil || m.cur.kind == roomConv && !slices.Contains(res.Rooms, m.cur.name) {
				m.cur = nil
				if res.Current != "" {
					m.open(m.room(res.Current))
				} else if len(m.rooms) > 0 {
					m.open(m.rooms[0])
				} else if len(m.dms) > 0 {
					m.open(m.dms[0])
				}
			}
			m.line(m.view(), infoEntry, "left #"+r.cmd.Room)
		default:
			m.line(origin, infoEntry, ui.Text{Local: m.loc}.Result(res))
		}
	case app.PeerList:
		m.people, m.peersKnown = res.Peers, true
		m.line(origin, infoEntry, ui.Text{Local: m.loc}.Result(res))
	case app.Info:
		text := res.Text
		if r.cmd.Kind == app.Help {
			text += "\n" + keyHelp
		}
		m.line(origin, infoEntry, text)
	case app.Invite:
		if r.cmd.Kind == app.Private {
			c := m.room(res.Room)
			m.open(c)
			origin = c
		}
		m.line(origin, infoEntry, ui.Text{Local: m.loc}.Result(res))
	case app.OutboxList, app.Route:
		m.line(origin, infoEntry, ui.Text{Local: m.loc}.Result(res))
	case app.Quitting:
		m.quitting = true
	}
	return nil
}

// syncRooms makes the list's rooms the joined ones.
func (m *Model) syncRooms(res app.RoomList) {
	m.rooms = slices.DeleteFunc(m.rooms, func(c *conv) bool { return !slices.Contains(res.Rooms, c.name) })
	for _, r := range res.Rooms {
		m.room(r)
	}
}

// loadOlder reads the page of history before the oldest message of c.
func (m *Model) loadOlder(c *conv) tea.Cmd {
	if c.kind != roomConv || c.loading || c.exhausted {
		return nil
	}
	c.loading = true
	b, room, before := m.b, c.name, c.oldestID()
	return func() tea.Msg {
		msgs, err := b.History(room, before, historyPage)
		return historyMsg{room: room, before: before, msgs: msgs, err: err}
	}
}

func (m *Model) historyPage(h historyMsg) {
	i := slices.IndexFunc(m.rooms, func(c *conv) bool { return c.name == h.room })
	if i < 0 {
		return
	}
	c := m.rooms[i]
	c.loading = false
	if h.err != nil {
		c.exhausted = true
		m.line(c, errEntry, "older history: "+h.err.Error())
		return
	}
	if len(h.msgs) < historyPage {
		c.exhausted = true
	}
	entries := make([]*entry, len(h.msgs))
	for i, msg := range h.msgs {
		msg.Backfill = true
		entries[i] = messageEntry(msg, m.self, m.nick)
	}
	if h.before != "" && c.oldestID() == h.before {
		c.prepend(entries)
		return
	}
	for _, e := range entries {
		m.add(c, e)
	}
}

// refreshPeers asks for the peer list; one request at a time, and one more
// if something changed meanwhile.
func (m *Model) refreshPeers() tea.Cmd {
	if m.peersBusy {
		m.peersDirty = true
		return nil
	}
	m.peersBusy = true
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		res, err := b.Execute(ctx, app.Command{Kind: app.Peers})
		pl, _ := res.(app.PeerList)
		return peersMsg{peers: pl.Peers, err: err}
	}
}

func (m *Model) peers(p peersMsg) tea.Cmd {
	m.peersBusy = false
	if p.err == nil {
		m.people, m.peersKnown = p.peers, true
		for _, pi := range p.peers {
			if c := m.findDM(pi.ID); c != nil && pi.Nick != "" {
				c.nick = pi.Nick
			}
		}
	} else if !errors.Is(p.err, chat.ErrClosed) {
		m.line(m.view(), errEntry, "peers: "+p.err.Error())
	}
	if m.peersDirty {
		m.peersDirty = false
		return m.refreshPeers()
	}
	return nil
}

// connected counts the peers this node has a connection to.
func (m *Model) connected() int {
	n := 0
	for _, p := range m.people {
		if p.Path != "" {
			n++
		}
	}
	return n
}

// quit asks the program to end; the UI stays until the node has shut
// down and the subscription ends (closedMsg).
func (m *Model) quit() tea.Cmd {
	if m.quitting {
		return nil
	}
	m.quitting = true
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		b.Execute(ctx, app.Command{Kind: app.Quit})
		return quitMsg{}
	}
}

// ExitNotes are the notices and errors that came while leaving (e.g. DMs
// that stay queued): the caller prints them once the screen is restored.
func (m *Model) ExitNotes() []string { return m.exitNotes }
