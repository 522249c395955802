package room

import (
	"errors"
	"fmt"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// signPrefix is what libp2p-pubsub prepends to a message before signing.
const signPrefix = "libp2p-pubsub:"

// VerifySignature checks m's signature as libp2p-pubsub checks it and
// returns its author: what a member served a message by another peer (as
// history, or in a roster) does, so that no one can forge it.
func VerifySignature(m *pubsubpb.Message) (peer.ID, error) {
	author, err := peer.IDFromBytes(m.GetFrom())
	if err != nil {
		return "", fmt.Errorf("bad author: %w", err)
	}
	var key crypto.PubKey
	if m.Key == nil {
		key, err = author.ExtractPublicKey()
	} else {
		key, err = crypto.UnmarshalPublicKey(m.Key)
		if err == nil && !author.MatchesPublicKey(key) {
			err = errors.New("signing key does not match the author")
		}
	}
	if err != nil || key == nil {
		return "", fmt.Errorf("author's key: %v", err)
	}
	unsigned := proto.CloneOf(m)
	unsigned.Signature, unsigned.Key = nil, nil
	data, err := proto.Marshal(unsigned)
	if err != nil {
		return "", err
	}
	ok, err := key.Verify(append([]byte(signPrefix), data...), m.GetSignature())
	if err != nil || !ok {
		return "", errors.New("invalid signature")
	}
	return author, nil
}
