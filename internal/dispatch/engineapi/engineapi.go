// Package engineapi is the small Docker Engine API client the dispatcher's
// backends share: JSON requests over the engine's Unix socket with
// net/http, pinned to API v1.41 (Docker 20.10 and later).
//
// Why not github.com/moby/moby/client: each backend needs about a dozen
// calls, each a small JSON request; the client library brings some twenty
// modules (OpenTelemetry among them) for that.
package engineapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is the Engine API version used (Docker 20.10+).
const Version = "v1.41"

// DefaultSocket is where the engine listens unless told otherwise.
const DefaultSocket = "/var/run/docker.sock"

// Client sends requests to one engine.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client of the engine on socket (DefaultSocket if empty);
// it does not contact the engine.
func New(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 4,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Socket is the engine's socket.
func (c *Client) Socket() string { return c.socket }

// Error is an error answer of the engine.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("docker: %s (HTTP %d)", e.Message, e.Status) }

// Status is the HTTP status of an engine's error answer in err, or 0.
func Status(err error) int {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// NotFound reports whether the engine answered 404.
func NotFound(err error) bool { return Status(err) == http.StatusNotFound }

// Do sends one API request; in (if not nil) is the JSON body, out (if not
// nil) receives the JSON answer.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := "http://docker/" + Version + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("docker engine at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var m struct{ Message string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		json.Unmarshal(b, &m)
		if m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return &Error{resp.StatusCode, m.Message}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// Filters is the filters query of list calls, e.g.
// Filters(map[string][]string{"label": {"a=b"}}).
func Filters(f map[string][]string) url.Values {
	b, _ := json.Marshal(f)
	return url.Values{"filters": {string(b)}}
}
