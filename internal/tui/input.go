package tui

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/app"
)

// Input bounds.
const (
	maxInputRunes = 16 << 10 // what the input line holds (a message may have 4096 bytes)
	maxInputRows  = 5        // rows the input grows to before it scrolls
	maxHistory    = 500      // lines kept for Up/Down
	wheelRows     = 3
)

func newInput() textarea.Model {
	ta := textarea.New()
	ta.ShowLineNumbers = false
	ta.Prompt = ""
	ta.Placeholder = "type a message, /help for commands"
	ta.CharLimit = maxInputRunes
	ta.MaxHeight = 0
	ta.EndOfBufferCharacter = ' '
	plain := textarea.Style{
		Base: lipgloss.NewStyle(), CursorLine: lipgloss.NewStyle(), CursorLineNumber: lipgloss.NewStyle(),
		EndOfBuffer: lipgloss.NewStyle(), LineNumber: lipgloss.NewStyle(), Prompt: lipgloss.NewStyle(),
		Text: lipgloss.NewStyle(), Placeholder: dimStyle,
	}
	ta.FocusedStyle, ta.BlurredStyle = plain, plain
	// Enter sends; a new line is Alt+Enter or Ctrl+J (a paste keeps its own).
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"))
	// No clipboard access: the terminal pastes.
	ta.KeyMap.Paste = key.NewBinding(key.WithDisabled())
	// These keys belong to the UI.
	ta.KeyMap.LineNext = key.NewBinding(key.WithKeys("down"))
	ta.KeyMap.LinePrevious = key.NewBinding(key.WithKeys("up"))
	ta.Cursor.SetMode(cursor.CursorStatic)
	ta.Focus()
	return ta
}

// inputRows is the height of the input for a screen w cells wide.
func (m *Model) inputRows(w int) int {
	tw := max(w-width(m.prompt()), 1)
	n := 0
	for _, l := range strings.Split(m.input.Value(), "\n") {
		n += width(l)/tw + 1
	}
	return min(max(n, 1), maxInputRows, max(m.height/3, 1))
}

// fitInput sizes the text area to the screen and its content.
func (m *Model) fitInput() {
	if m.width == 0 {
		return
	}
	m.input.SetWidth(max(m.width-width(m.prompt()), 1))
	m.input.SetHeight(m.inputRows(m.width))
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	if k.Paste {
		m.comp = nil
		// Terminals paste line ends as CR; the text keeps its lines and is
		// sent as one message.
		text := strings.ReplaceAll(string(k.Runes), "\r\n", "\n")
		m.insert(strings.ReplaceAll(text, "\r", "\n"))
		return nil
	}
	if k.Type == tea.KeyRunes && !k.Alt {
		// Typed text, never a key: bubbletea reports the runes of one read
		// as one message, and its String() of "up" or "end" typed quickly
		// (or over a slow link) would match the key of that name.
		m.comp = nil
		m.insert(string(k.Runes))
		return nil
	}
	s := k.String()
	if s != "tab" && s != "shift+tab" {
		m.comp = nil
	}
	switch s {
	case "ctrl+c":
		return m.quit()
	case "ctrl+d":
		if m.input.Value() == "" {
			return m.quit()
		}
	case "enter", "ctrl+m":
		return m.submit()
	case "tab":
		m.complete(1)
		return nil
	case "shift+tab":
		m.complete(-1)
		return nil
	case "up":
		if m.input.Line() == 0 && m.input.LineInfo().RowOffset == 0 {
			m.recall(-1)
			return nil
		}
	case "down":
		li := m.input.LineInfo()
		if m.input.Line() == m.input.LineCount()-1 && li.RowOffset == li.Height-1 {
			m.recall(1)
			return nil
		}
	case "pgup":
		return m.scroll(m.pageRows())
	case "pgdown":
		return m.scroll(-m.pageRows())
	case "esc":
		c := m.view()
		c.scroll, c.unseen = 0, 0
		return nil
	case "ctrl+n":
		m.step(1)
		return nil
	case "ctrl+p":
		m.step(-1)
		return nil
	case "f2", "alt+p":
		m.showPeople = !m.showPeople
		return nil
	case "ctrl+l":
		return tea.ClearScreen
	}
	if k.Alt && k.Type == tea.KeyRunes && len(k.Runes) == 1 && k.Runes[0] >= '0' && k.Runes[0] <= '9' {
		n := int(k.Runes[0] - '0')
		if n == 0 {
			n = 10
		}
		if cs := m.convs(); n <= len(cs) {
			m.open(cs[n-1])
		}
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	m.fitInput()
	return cmd
}

// insert puts text at the cursor.
func (m *Model) insert(text string) {
	m.input.InsertString(text)
	m.input, _ = m.input.Update(nil) // keeps the cursor in view
	m.fitInput()
}

// step opens the next (or previous) conversation of the list.
func (m *Model) step(d int) {
	cs := m.convs()
	if len(cs) == 0 {
		return
	}
	i := slices.Index(cs, m.cur)
	if i < 0 {
		i = 0
	} else {
		i = (i + d + len(cs)) % len(cs)
	}
	m.open(cs[i])
}

func (m *Model) pageRows() int { return max(m.layout().bodyH-2, 1) }

// scroll moves the view up (n > 0) or down by n rows. Reaching the top
// loads older history.
func (m *Model) scroll(n int) tea.Cmd {
	c := m.view()
	g := m.layout()
	h := g.bodyH - 1
	maxScroll := max(c.totalRows(m.rowsAt(g.convW))-h, 0)
	c.scroll = min(max(c.scroll+n, 0), maxScroll)
	if c.scroll == 0 {
		c.unseen = 0
	}
	if n > 0 && c.scroll == maxScroll {
		return m.loadOlder(c)
	}
	return nil
}

func (m *Model) mouse(ev tea.MouseMsg) tea.Cmd {
	g := m.g
	switch {
	case ev.Button == tea.MouseButtonWheelUp:
		return m.scroll(wheelRows)
	case ev.Button == tea.MouseButtonWheelDown:
		return m.scroll(-wheelRows)
	case ev.Button == tea.MouseButtonLeft && ev.Action == tea.MouseActionPress:
		switch {
		case g.listW > 0 && ev.X < g.listW && ev.Y < len(m.listRows):
			if c := m.listRows[ev.Y]; c != nil {
				m.open(c)
			}
		case g.peopleW > 0 && ev.X >= g.peopleX && ev.Y < len(m.peopleRows):
			if p := m.peopleRows[ev.Y]; p != "" {
				m.open(m.dm(p, m.nickOf(p)))
			}
		}
	}
	return nil
}

// recall steps through the lines sent before (d = -1 older, +1 newer).
func (m *Model) recall(d int) {
	if len(m.history) == 0 {
		return
	}
	if m.histPos == len(m.history) {
		m.draft = m.input.Value()
	}
	pos := min(max(m.histPos+d, 0), len(m.history))
	if pos == m.histPos {
		return
	}
	m.histPos = pos
	if pos == len(m.history) {
		m.input.SetValue(m.draft)
	} else {
		m.input.SetValue(m.history[pos])
	}
	m.fitInput()
}

// messageText is the text of the message being typed (of a /dm too), to
// measure it against the limit; ok is false for other commands.
func (m *Model) messageText() (string, bool) {
	v := m.input.Value()
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
		cmd, err := app.ParseLine(v)
		return cmd.Text, err == nil
	}
	if strings.HasPrefix(v, "/dm ") || strings.HasPrefix(v, "/msg ") {
		cmd, err := app.ParseLine(v)
		return cmd.Text, err == nil
	}
	return "", false
}

// submit runs the typed line: a message to the open conversation, or a
// command of the shared command set.
func (m *Model) submit() tea.Cmd {
	line := m.input.Value()
	cmd, err := app.ParseLine(line)
	if app.IsEmpty(err) {
		return nil
	}
	origin := m.view()
	if err != nil {
		if c := m.openDM(line); c != nil {
			m.sent(line)
			m.open(c)
			return nil
		}
		m.sent(line) // Up brings it back to fix
		m.line(origin, errEntry, err.Error())
		return nil
	}
	if (cmd.Kind == app.Say || cmd.Kind == app.DM) && len(cmd.Text) > chat.MaxTextBytes {
		m.line(origin, errEntry, "not sent: the message has "+strconv.Itoa(len(cmd.Text))+" bytes, at most "+strconv.Itoa(chat.MaxTextBytes)+" fit")
		return nil
	}
	switch cmd.Kind {
	case app.Quit:
		m.sent(line)
		return m.quit()
	case app.Say:
		switch origin.kind {
		case roomConv:
			cmd.Room = origin.name
		case dmConv:
			cmd = app.Command{Kind: app.DM, To: origin.peer.String(), Text: cmd.Text}
		default:
			m.line(origin, errEntry, app.ErrNoRoom.Error())
			return nil
		}
	case app.Leave:
		if cmd.Room == "" {
			if origin.kind != roomConv {
				m.line(origin, errEntry, "/leave ROOM: this is not a room")
				return nil
			}
			cmd.Room = origin.name
		}
	}
	if m.quitting {
		m.line(origin, errEntry, "leaving: not sent")
		return nil
	}
	m.sent(line)
	origin.scroll, origin.unseen = 0, 0
	return m.run(origin, cmd)
}

// openDM handles "/dm PEER" without a text: it opens the conversation
// with a known peer (by nick, peer ID or the end of one).
func (m *Model) openDM(line string) *conv {
	f := strings.Fields(line)
	if len(f) != 2 || (f[0] != "/dm" && f[0] != "/msg") {
		return nil
	}
	var match []chat.PeerInfo
	for _, p := range m.people {
		if p.Nick == f[1] || p.ID.String() == f[1] || len(f[1]) >= 6 && strings.HasSuffix(p.ID.String(), f[1]) {
			match = append(match, p)
		}
	}
	if len(match) == 1 {
		return m.dm(match[0].ID, match[0].Nick)
	}
	if id, err := peer.Decode(f[1]); err == nil {
		return m.dm(id, m.nickOf(id))
	}
	return nil
}

// sent clears the input and remembers the line for Up.
func (m *Model) sent(line string) {
	if len(m.history) == 0 || m.history[len(m.history)-1] != line {
		m.history = append(m.history, line)
		if len(m.history) > maxHistory {
			m.history = m.history[len(m.history)-maxHistory:]
		}
	}
	m.histPos, m.draft = len(m.history), ""
	m.input.Reset()
	m.fitInput()
}

// completion is a Tab completion under way: Tab again cycles.
type completion struct {
	base  string   // the input before the completed word
	cands []string // completed words, with what follows them
	i     int
	value string // the input after the last completion
}

var commands = []string{"/dm ", "/help", "/join ", "/leave", "/nick ", "/outbox", "/peers", "/quit", "/room "}

// complete completes the word before the cursor (at the end of the
// input): /commands, nicks, room names, peer IDs after /dm.
func (m *Model) complete(d int) {
	v := m.input.Value()
	if c := m.comp; c != nil && c.value == v {
		c.i = (c.i + d + len(c.cands)) % len(c.cands)
		m.setCompleted(c)
		return
	}
	m.comp = nil
	if !m.cursorAtEnd() {
		return
	}
	start := strings.LastIndexAny(v, " \n") + 1
	base, word := v[:start], v[start:]
	if word == "" && start == 0 {
		return
	}
	first := strings.Fields(base)
	var cands []string
	switch {
	case start == 0 && strings.HasPrefix(word, "/"):
		cands = prefixed(commands, word, "")
	case strings.HasPrefix(word, "#"):
		cands = prefixed(m.roomNames(len(first) == 1 && first[0] == "/join"), word[1:], " ")
		for i := range cands {
			cands[i] = "#" + cands[i]
		}
	case len(first) == 1 && slices.Contains([]string{"/join", "/room", "/leave", "/part"}, first[0]):
		cands = prefixed(m.roomNames(first[0] == "/join"), word, "")
	case len(first) == 1 && (first[0] == "/dm" || first[0] == "/msg"):
		cands = prefixed(m.dmTargets(), word, " ")
	case word != "":
		suffix := " "
		if start == 0 {
			suffix = ": "
		}
		cands = prefixed(m.nicks(), word, suffix)
	}
	if len(cands) == 0 {
		return
	}
	c := &completion{base: base, cands: cands}
	if d < 0 {
		c.i = len(cands) - 1
	}
	m.comp = c
	m.setCompleted(c)
}

func (m *Model) setCompleted(c *completion) {
	m.input.SetValue(c.base + c.cands[c.i])
	c.value = m.input.Value()
	m.fitInput()
}

// cursorAtEnd reports whether the cursor is after the last character.
func (m *Model) cursorAtEnd() bool {
	lines := strings.Split(m.input.Value(), "\n")
	if m.input.Line() != len(lines)-1 {
		return false
	}
	li := m.input.LineInfo()
	return li.StartColumn+li.ColumnOffset >= utf8.RuneCountInString(lines[len(lines)-1])
}

// prefixed returns the words that start with prefix (case-insensitive),
// sorted, each followed by suffix.
func prefixed(words []string, prefix, suffix string) []string {
	lp := strings.ToLower(prefix)
	var out []string
	for _, w := range words {
		if strings.HasPrefix(strings.ToLower(w), lp) && !slices.Contains(out, w+suffix) {
			out = append(out, w+suffix)
		}
	}
	slices.Sort(out)
	return out
}

// roomNames are the joined rooms (and, for /join, the rooms peers are in).
func (m *Model) roomNames(others bool) []string {
	var out []string
	for _, c := range m.rooms {
		out = append(out, c.name)
	}
	if others {
		for _, p := range m.people {
			out = append(out, p.Rooms...)
		}
	}
	return out
}

// nicks are the nicks of the peers known and of the open conversation's
// authors, this node's own excepted.
func (m *Model) nicks() []string {
	var out []string
	for _, p := range m.people {
		if p.Nick != "" && p.ID != m.self {
			out = append(out, clean(p.Nick))
		}
	}
	for _, e := range m.view().entries {
		if e.kind == msgEntry && e.nick != "" && e.from != m.self {
			out = append(out, clean(e.nick))
		}
	}
	return out
}

// dmTargets are what /dm takes: a nick used by one peer only, else the
// peer IDs of the peers using it.
func (m *Model) dmTargets() []string {
	byNick := map[string][]peer.ID{}
	add := func(nick string, id peer.ID) {
		if nick != "" && id != m.self && !slices.Contains(byNick[nick], id) {
			byNick[nick] = append(byNick[nick], id)
		}
	}
	for _, p := range m.people {
		add(p.Nick, p.ID)
	}
	for _, c := range m.dms {
		add(c.nick, c.peer)
	}
	var out []string
	for nick, ids := range byNick {
		if len(ids) == 1 && clean(nick) == nick && !strings.ContainsAny(nick, " \t") {
			out = append(out, nick)
			continue
		}
		for _, id := range ids {
			out = append(out, id.String())
		}
	}
	return out
}
