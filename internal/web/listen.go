package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// DefaultAddr is where `parley web` serves unless told otherwise.
const DefaultAddr = "127.0.0.1:7780"

// portTries is how many ports after the default's are tried when it is
// taken (another node, another program).
const portTries = 20

// Listen listens on addr. A non-loopback address needs allowRemote: the
// token is then the only protection. With tryNext, a taken port moves on
// to the next free one.
func Listen(addr string, allowRemote, tryNext bool) (net.Listener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("web address %q: want HOST:PORT, e.g. %s", addr, DefaultAddr)
	}
	if !IsLoopback(host) && !allowRemote {
		return nil, fmt.Errorf("web address %q is reachable from other machines: add --web-allow-remote if you mean it (the API token is then the only protection)", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("web address %q: bad port", addr)
	}
	tries := 1
	if tryNext && port != 0 {
		tries = portTries
	}
	for i := range tries {
		a := net.JoinHostPort(host, strconv.Itoa(port+i))
		ln, err := net.Listen("tcp", a)
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || i == tries-1 {
			if errors.Is(err, syscall.EADDRINUSE) && tries > 1 {
				return nil, fmt.Errorf("web: ports %d to %d are all taken: give a free one with --web HOST:PORT", port, port+tries-1)
			}
			return nil, fmt.Errorf("web: listen on %s: %w", a, err)
		}
	}
	return nil, errors.New("unreachable")
}

// IsLoopback reports whether host (a name or an IP) is loopback only.
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoadOrCreateToken returns the API token kept in path, creating a random
// one (file mode 0600) on first use.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("API token file %s is empty or too short: delete it and a new one is made", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read API token: %w", err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".api-token-*")
	if err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.WriteString(tok + "\n")
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			return "", fmt.Errorf("write API token: %w", err)
		}
	} else {
		tmp.Close()
		return "", fmt.Errorf("write API token: %w", err)
	}
	return tok, nil
}
