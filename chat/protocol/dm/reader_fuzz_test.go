package dm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/parley-chat/parley/chat/pb"
)

// FuzzReader feeds the length-prefixed framing bytes as any peer may send
// them: never a panic, never a frame over MaxFrameBytes read.
func FuzzReader(f *testing.F) {
	one := appendFrame(nil, &pb.DMFrame{Body: &pb.DMFrame_Ack{Ack: &pb.DMAck{Id: "0123456789abcdef0123456789abcdef"}}})
	f.Add(one)
	f.Add(append(append([]byte{}, one...), one...))
	f.Add(binary.AppendUvarint(nil, MaxFrameBytes+1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(bytes.NewReader(data))
		for range 64 {
			r.frameBuffered()
			if _, err := r.read(); err != nil {
				return
			}
			if len(r.buf) > MaxFrameBytes {
				t.Fatalf("read a frame of %d bytes", len(r.buf))
			}
		}
	})
}
