package bench

import (
	"os"
	"testing"
)

func TestReadProcMemOfItself(t *testing.T) {
	m, err := ReadProcMem(os.Getpid())
	if err != nil {
		t.Skip("no /proc here:", err)
	}
	if m.Exe <= 0 || m.Exe > m.File || m.File > m.RSS || m.Anon > m.RSS {
		t.Errorf("%+v: want 0 < Exe <= File <= RSS and Anon <= RSS", m)
	}
}
