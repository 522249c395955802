package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kind names a command.
type Kind string

// The commands every front end offers.
const (
	Say    Kind = "say"    // Text to Room (default: the session's current room)
	DM     Kind = "dm"     // Text to peer To (peer ID or nick)
	Join   Kind = "join"   // join Room and make it current
	Leave  Kind = "leave"  // leave Room (default: the current one)
	Switch Kind = "room"   // make Room current, or list the rooms
	Peers  Kind = "peers"  // list peers
	Nick   Kind = "nick"   // change the nick to Text
	Outbox Kind = "outbox" // DMs not delivered yet
	Why    Kind = "why"    // how peer To is reached
	Help   Kind = "help"
	Quit   Kind = "quit"

	// Private creates private room Room, joins it and answers its invite.
	Private Kind = "private"
	// InviteLink answers an invite link to Room (default: the current one).
	InviteLink Kind = "invite"
	// Kick removes peer To from private Room (default: the current one),
	// which this node created.
	Kick Kind = "kick"
)

// Command is one user action parsed from a typed line or a JSON object.
type Command struct {
	Kind Kind
	Room string
	To   string
	Text string
}

var errEmpty = errors.New("empty line")

// IsEmpty reports whether err means the line held nothing to do.
func IsEmpty(err error) bool { return errors.Is(err, errEmpty) }

// HelpText lists the typed commands.
const HelpText = `commands:
  TEXT               send TEXT to the current room
  /dm PEER TEXT      direct message (also /msg); PEER is a nick, nick[ID tag] as
                     shown, the ID tag alone, or a peer ID
  /join ROOM         join a room and make it current (ROOM or #ROOM)
  /join LINK         join the room of an invite link (parley://join/…)
  /invite [ROOM]     an invite link to a room: send it to a friend
  /private NAME      create a private room (only invited members can read it)
  /kick PEER         remove PEER from a private room you created (new key)
  /leave [ROOM]      leave a room (default: the current one; also /part)
  /room [ROOM]       switch the current room, or show the rooms
  /peers             list peers: nick, rooms and how they are reached
  /nick NAME         change your nick
  /outbox            DMs not delivered yet
  /why PEER          how PEER is reached: path, last hole punch, round trip
  /quit              leave (end of input does the same)
  /help              this list`

// RoomName is a room name as typed, without the '#' that front ends
// show before room names ("#lobby" and "lobby" are the same room).
func RoomName(typed string) string { return strings.TrimPrefix(typed, "#") }

// ParseLine parses a typed line. A line starting with "//" sends the text
// after the first slash (a way to say something that starts with '/').
func ParseLine(line string) (Command, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return Command{}, errEmpty
	}
	if !strings.HasPrefix(line, "/") {
		return Command{Kind: Say, Text: line}, nil
	}
	if strings.HasPrefix(line, "//") {
		return Command{Kind: Say, Text: line[1:]}, nil
	}
	name, rest, _ := strings.Cut(line[1:], " ")
	rest = strings.TrimSpace(rest)
	arg := func() (string, error) {
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return "", fmt.Errorf("usage: /%s %s", name, strings.ToUpper(argName(name)))
		}
		return rest, nil
	}
	switch name {
	case "dm", "msg":
		to, text, _ := strings.Cut(rest, " ")
		text = strings.TrimSpace(text)
		if to == "" || text == "" {
			return Command{}, fmt.Errorf("usage: /dm PEER TEXT")
		}
		return Command{Kind: DM, To: to, Text: text}, nil
	case "join":
		room, err := arg()
		return Command{Kind: Join, Room: RoomName(room)}, err
	case "invite":
		if rest == "" {
			return Command{Kind: InviteLink}, nil
		}
		room, err := arg()
		return Command{Kind: InviteLink, Room: RoomName(room)}, err
	case "private":
		room, err := arg()
		return Command{Kind: Private, Room: RoomName(room)}, err
	case "kick":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return Command{}, errors.New("usage: /kick PEER")
		}
		return Command{Kind: Kick, To: rest}, nil
	case "leave", "part":
		if rest == "" {
			return Command{Kind: Leave}, nil
		}
		room, err := arg()
		return Command{Kind: Leave, Room: RoomName(room)}, err
	case "room":
		if rest == "" {
			return Command{Kind: Switch}, nil
		}
		room, err := arg()
		return Command{Kind: Switch, Room: RoomName(room)}, err
	case "nick":
		// The whole rest is the nick asked for, so that a refusal says
		// what is wrong with it ("spaces are not allowed"), not just usage.
		if rest == "" {
			return Command{}, errors.New("usage: /nick NAME")
		}
		return Command{Kind: Nick, Text: rest}, nil
	case "why":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return Command{}, errors.New("usage: /why PEER")
		}
		return Command{Kind: Why, To: rest}, nil
	case "peers", "quit", "help", "outbox":
		if rest != "" {
			return Command{}, fmt.Errorf("usage: /%s", name)
		}
		return Command{Kind: Kind(name)}, nil
	default:
		return Command{}, fmt.Errorf("unknown command /%s (try /help)", name)
	}
}

func argName(cmd string) string {
	switch cmd {
	case "nick", "private":
		return "name"
	default:
		return "room"
	}
}

// jsonCommand is a command on stdin in --json mode, e.g.
// {"cmd":"send","room":"lobby","text":"hi"} or {"cmd":"dm","to":"alice","text":"hi"}.
type jsonCommand struct {
	Cmd  string `json:"cmd"`
	Room string `json:"room"`
	To   string `json:"to"`
	Text string `json:"text"`
	Nick string `json:"nick"`
}

// ParseJSON parses a JSON command object.
func ParseJSON(line string) (Command, error) {
	var c jsonCommand
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("bad JSON command: %w", err)
	}
	c.Room = RoomName(c.Room)
	switch c.Cmd {
	case "send", "say":
		return Command{Kind: Say, Room: c.Room, Text: c.Text}, nil
	case "dm":
		if c.To == "" {
			return Command{}, fmt.Errorf(`dm: "to" is missing`)
		}
		return Command{Kind: DM, To: c.To, Text: c.Text}, nil
	case "join", "leave", "room":
		if c.Room == "" && c.Cmd == "join" {
			return Command{}, fmt.Errorf(`join: "room" is missing`)
		}
		return Command{Kind: Kind(c.Cmd), Room: c.Room}, nil
	case "nick":
		return Command{Kind: Nick, Text: c.Nick}, nil
	case "why":
		if c.To == "" {
			return Command{}, fmt.Errorf(`why: "to" is missing`)
		}
		return Command{Kind: Why, To: c.To}, nil
	case "invite":
		return Command{Kind: InviteLink, Room: c.Room}, nil
	case "private":
		if c.Room == "" {
			return Command{}, fmt.Errorf(`private: "room" is missing`)
		}
		return Command{Kind: Private, Room: c.Room}, nil
	case "kick":
		if c.To == "" {
			return Command{}, fmt.Errorf(`kick: "to" is missing`)
		}
		return Command{Kind: Kick, To: c.To, Room: c.Room}, nil
	case "peers", "quit", "help", "outbox":
		return Command{Kind: Kind(c.Cmd)}, nil
	default:
		return Command{}, fmt.Errorf("unknown JSON command %q", c.Cmd)
	}
}
