package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/invite"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/storage"
)

// PrivateRoom is a private room's key: what an invite link to it carries
// (with relay addresses). Secret is key material: never log it.
type PrivateRoom struct {
	Name    string
	Secret  []byte
	Epoch   uint64
	Creator peer.ID
}

// Errors of private rooms.
var (
	ErrNotPrivate = errors.New("not a private room")
	ErrNotCreator = errors.New("only the room's creator can remove members")
)

// CreatePrivate makes a private room name with a fresh 256-bit secret,
// this node as its creator, keeps its key in the store and joins it.
func (s *Service) CreatePrivate(name string) (PrivateRoom, error) {
	pr := PrivateRoom{Name: name, Secret: roomproto.NewSecret(), Creator: s.h.ID()}
	if err := s.JoinPrivate(pr); err != nil {
		return PrivateRoom{}, err
	}
	return pr, nil
}

// JoinPrivate joins a private room by its key (from an invite link) and
// keeps the key in the store, so it can be invited to again and rejoined.
func (s *Service) JoinPrivate(pr PrivateRoom) error {
	if st, ok, err := s.storedPrivate(pr.Name); err == nil && ok && st.Creator == pr.Creator && st.Epoch > pr.Epoch {
		pr = st // an old link to a room this node has moved on with
	}
	sealer, err := roomproto.NewSealer(pr.Secret, pr.Epoch)
	if err != nil {
		return fmt.Errorf("join private room %q: %w", pr.Name, err)
	}
	if err := ValidateRoomName(pr.Name); err != nil {
		return err
	}
	if r, ok := s.rooms.get(pr.Name); ok {
		if r.sealer == nil {
			return fmt.Errorf("join private room %q: %w: the public #%s (the private one is another room: /leave %s first)",
				pr.Name, ErrAlreadyInRoom, pr.Name, pr.Name)
		}
		// A newer link from the room's creator moves this node on to
		// its epoch: a member who missed a rekey, or one let back in.
		if cur, ok, err := s.storedPrivate(pr.Name); err == nil && ok && cur.Creator == pr.Creator && pr.Epoch > cur.Epoch {
			return s.rekey(r, pr, "from a newer invite link")
		}
		return fmt.Errorf("join room %q: %w", pr.Name, ErrAlreadyInRoom)
	}
	if err := s.keepKey(pr); err != nil {
		return fmt.Errorf("join private room %q: %w", pr.Name, err)
	}
	return s.join(pr.Name, sealer)
}

// Private returns the key of the joined private room name; false for a
// public room or one not joined.
func (s *Service) Private(name string) (PrivateRoom, bool) {
	r, ok := s.rooms.get(name)
	if !ok || r.sealer == nil {
		return PrivateRoom{}, false
	}
	pr, ok, err := s.storedPrivate(name)
	if err != nil || !ok {
		return PrivateRoom{}, false
	}
	return pr, true
}

// PrivateRooms lists the private rooms whose keys this node keeps
// (joined now or at some earlier run, and not left).
func (s *Service) PrivateRooms() ([]PrivateRoom, error) {
	names, err := s.store.PrivateRooms()
	if err != nil {
		return nil, err
	}
	var out []PrivateRoom
	for _, n := range names {
		if pr, ok, err := s.storedPrivate(n); err == nil && ok {
			out = append(out, pr)
		}
	}
	return out, nil
}

func (s *Service) storedPrivate(name string) (PrivateRoom, bool, error) {
	st, ok, err := s.store.PrivateRoom(name)
	if err != nil || !ok {
		return PrivateRoom{}, ok, err
	}
	creator, err := peer.Decode(st.Creator)
	if err != nil {
		return PrivateRoom{}, false, fmt.Errorf("private room %q: stored creator: %w", name, err)
	}
	return PrivateRoom{Name: st.Name, Secret: st.Secret, Epoch: st.Epoch, Creator: creator}, true, nil
}

// CanKick says why this node could not remove anyone from room name (not
// joined, public, or created by someone else), or nil. Front ends ask it
// before they resolve whom to remove, so that "this room is public" is
// the answer whether or not the peer's nick is known yet.
func (s *Service) CanKick(name string) error {
	_, _, err := s.kickable(name)
	return err
}

func (s *Service) kickable(name string) (*room, PrivateRoom, error) {
	r, ok := s.rooms.get(name)
	if !ok {
		return nil, PrivateRoom{}, fmt.Errorf("kick from %q: %w", name, ErrNotInRoom)
	}
	if r.sealer == nil {
		return nil, PrivateRoom{}, fmt.Errorf("kick from %q: %w (anyone may join a public room)", name, ErrNotPrivate)
	}
	pr, ok, err := s.storedPrivate(name)
	if err != nil || !ok {
		return nil, PrivateRoom{}, fmt.Errorf("kick from %q: the room's key is not stored: %v", name, err)
	}
	if pr.Creator != s.h.ID() {
		return nil, PrivateRoom{}, fmt.Errorf("kick from %q: %w", name, ErrNotCreator)
	}
	return r, pr, nil
}

// Kick removes p from the private room name, which this node created: a
// fresh secret (the next epoch) goes to every other member heard in the
// room, as a DM (end-to-end secured, queued until delivered), and the
// room moves to the new epoch's topic. p keeps what it had; it gets
// nothing sent after this.
func (s *Service) Kick(ctx context.Context, name string, p peer.ID) (int, error) {
	r, old, err := s.kickable(name)
	if err != nil {
		return 0, err
	}
	if p == s.h.ID() {
		return 0, fmt.Errorf("kick from %q: %w", name, ErrSelf)
	}
	// Everyone seen in the room since this node joined it: connected,
	// heard through the relay, or gone offline meanwhile (their DM waits
	// in the outbox).
	seen := append(r.topic.ListPeers(), r.heardWithin(memberTimeout)...)
	r.mu.Lock()
	for m := range r.met {
		seen = append(seen, m)
	}
	r.mu.Unlock()
	var members []peer.ID
	for _, m := range seen {
		if role, _ := s.roles.known(m); m == p || m == s.h.ID() || role == RoleRelay || slices.Contains(members, m) {
			continue
		}
		members = append(members, m)
	}
	next := PrivateRoom{Name: name, Secret: roomproto.NewSecret(), Epoch: old.Epoch + 1, Creator: s.h.ID()}
	link, err := invite.Encode(invite.Link{Room: next.Name, Secret: next.Secret, Epoch: next.Epoch, Creator: next.Creator})
	if err != nil {
		return 0, fmt.Errorf("kick from %q: %w", name, err)
	}
	if err := s.rekey(r, next, "a member was removed; the room goes on without them"); err != nil {
		return 0, fmt.Errorf("kick from %q: %w", name, err)
	}
	sent := 0
	for _, m := range members {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		if _, err := s.SendDM(m.String(), link); err != nil {
			s.emit(Error{Err: fmt.Errorf("the new key of #%s could not be queued for %s: %w", name, s.displayName(m), err)})
			continue
		}
		sent++
	}
	s.log.Info("private room rekeyed", "room", name, "epoch", next.Epoch, "members", sent)
	return sent, nil
}

// rekey moves the joined private room r to next: the key is stored, the
// old topic left, the new one joined; a Notice says why.
func (s *Service) rekey(r *room, next PrivateRoom, why string) error {
	sealer, err := roomproto.NewSealer(next.Secret, next.Epoch)
	if err != nil {
		return err
	}
	if err := s.keepKey(next); err != nil {
		return err
	}
	if cur, ok := s.rooms.remove(r.name); ok {
		cur.close()
	}
	if err := s.join(next.Name, sealer); err != nil {
		return err
	}
	s.emit(Notice{Text: fmt.Sprintf("#%s has a new key (epoch %d): %s", next.Name, next.Epoch, why)})
	return nil
}

// takeRekey applies a DM from the creator of a joined private room that
// carries the room's next key, and reports whether it did (then the DM is
// not shown: it is the room's business, not a message).
func (s *Service) takeRekey(from peer.ID, text string) bool {
	r, l, ok := s.isRekey(from, text)
	if !ok {
		return false
	}
	if err := s.rekey(r, PrivateRoom{Name: l.Room, Secret: l.Secret, Epoch: l.Epoch, Creator: l.Creator}, "a member was removed; the room goes on without them"); err != nil {
		s.emit(Error{Err: s.tell(fmt.Sprintf("#%s has a new key but this node could not move to it; see the log", l.Room), nil, err, "room", l.Room)})
	}
	return true
}

// isRekey reports whether a DM from from carries the next key of a joined
// private room that from created.
func (s *Service) isRekey(from peer.ID, text string) (*room, invite.Link, bool) {
	if !invite.IsLink(text) {
		return nil, invite.Link{}, false
	}
	l, err := invite.Decode(text)
	if err != nil || !l.Private() || l.Creator != from {
		return nil, invite.Link{}, false
	}
	r, ok := s.rooms.get(l.Room)
	if !ok || r.sealer == nil {
		return nil, invite.Link{}, false
	}
	cur, ok, err := s.storedPrivate(l.Room)
	if err != nil || !ok || cur.Creator != from || l.Epoch <= cur.Epoch {
		return nil, invite.Link{}, false
	}
	return r, l, true
}

// maxPrevious bounds the earlier epochs whose history a private room
// still shows.
const maxPrevious = 16

// keepKey stores pr's key. The wire names of the room's earlier epochs
// (of the same creator) are kept with it, so its history from before a
// rekey is still shown.
func (s *Service) keepKey(pr PrivateRoom) error {
	var prev []string
	if old, ok, err := s.store.PrivateRoom(pr.Name); err != nil {
		return err
	} else if ok && old.Creator == pr.Creator.String() {
		prev = old.Previous
		if old.Epoch < pr.Epoch {
			if sl, err := roomproto.NewSealer(old.Secret, old.Epoch); err == nil {
				prev = append([]string{sl.Name()}, prev...)
			}
		}
	}
	return s.store.SavePrivateRoom(storage.PrivateRoom{Name: pr.Name, Secret: pr.Secret, Epoch: pr.Epoch,
		Creator: pr.Creator.String(), Previous: prev[:min(len(prev), maxPrevious)]})
}

// wiresOf lists where room's history is stored, newest first: its wire
// name, then a private room's earlier epochs'.
func (s *Service) wiresOf(room string) []string {
	r, ok := s.rooms.get(room)
	if !ok {
		return []string{room}
	}
	wires := []string{r.wire}
	if r.sealer != nil {
		if st, ok, err := s.store.PrivateRoom(room); err == nil && ok {
			wires = append(wires, st.Previous...)
		}
	}
	return wires
}
