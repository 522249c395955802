package node

import "github.com/libp2p/go-libp2p/core/peer"

// FoundOnLAN does what an mDNS answer from p does.
func FoundOnLAN(n *Node, p peer.ID) { n.foundOnLAN(p) }
