// Package web serves a node's local HTTP API (/api/v1/…, documented in
// openapi.json) and the web app that uses it, embedded in the binary. It
// is one more thin front end over internal/app: it parses requests into
// app calls and renders results and events as JSON; it never touches
// libp2p or the store.
//
// Security, as local-API daemons such as Syncthing do it:
//   - every API request needs the node's API token, as an Authorization
//     bearer or as the session cookie that POST /api/v1/session sets (the
//     page /login#TOKEN does that, so the token never travels in a URL);
//   - on a loopback address, requests whose Host is not a loopback name
//     are refused (DNS rebinding);
//   - state-changing requests from a foreign origin are refused (CSRF,
//     net/http's CrossOriginProtection);
//   - bodies are bounded, unknown fields refused, and every client mistake
//     is a 4xx with {"error": "…"} a person can read.
//
// The event stream (/api/v1/events) is Server-Sent Events: each event is
// the --json event line, its id the node's event sequence number, so a
// reconnecting page resumes with Last-Event-ID. Each stream is one bus
// subscriber with its own bounded queue: a stuck tab is cut off and
// resumes or resyncs, and never slows the node or other tabs.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/app"
)

//go:embed openapi.json
var openAPI []byte

//go:embed static
var static embed.FS

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 64 << 10

// sessionCookie is the cookie name of a logged-in browser.
const sessionCookie = "parley_session"

// Config configures a Server.
type Config struct {
	// Token is the API token every request must carry.
	Token string
	// Loopback says the server listens on a loopback address only, so
	// Host headers must name loopback too.
	Loopback bool
	// URL is where the web app is served, as printed (for /api/v1/info).
	URL string
	// Logger logs requests that fail (never the token).
	Logger *slog.Logger
	// EventBuffer is each event stream's queue (default 4096).
	EventBuffer int
	// Heartbeat is how often an idle event stream sends a comment
	// (default 15 s), so proxies and browsers keep it open.
	Heartbeat time.Duration
}

// Server is the HTTP API and web app of one node.
type Server struct {
	a      *app.App
	cfg    Config
	log    *slog.Logger
	routes []route
	mux    *http.ServeMux
}

// route is one registered API route; the OpenAPI test checks each is
// documented.
type route struct {
	Method, Path string
	public       bool
	h            func(w http.ResponseWriter, r *http.Request) error
}

// New builds the server for a.
func New(a *app.App, cfg Config) (*Server, error) {
	if len(cfg.Token) < 16 {
		return nil, errors.New("web: API token missing or too short")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 4096
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	s := &Server{a: a, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	s.routes = []route{
		{Method: "POST", Path: "/api/v1/session", public: true, h: s.login},
		{Method: "GET", Path: "/api/v1/openapi.json", public: true, h: s.openapi},
		{Method: "GET", Path: "/api/v1/info", h: s.info},
		{Method: "GET", Path: "/api/v1/rooms", h: s.rooms},
		{Method: "POST", Path: "/api/v1/rooms", h: s.join},
		{Method: "DELETE", Path: "/api/v1/rooms/{room}", h: s.leave},
		{Method: "GET", Path: "/api/v1/rooms/{room}/invite", h: s.invite},
		{Method: "POST", Path: "/api/v1/private", h: s.private},
		{Method: "GET", Path: "/api/v1/rooms/{room}/messages", h: s.roomMessages},
		{Method: "POST", Path: "/api/v1/rooms/{room}/messages", h: s.say},
		{Method: "POST", Path: "/api/v1/rooms/{room}/read", h: s.roomRead},
		{Method: "GET", Path: "/api/v1/dms", h: s.conversations},
		{Method: "GET", Path: "/api/v1/dms/{peer}/messages", h: s.dmMessages},
		{Method: "POST", Path: "/api/v1/dms/{peer}/messages", h: s.dm},
		{Method: "POST", Path: "/api/v1/dms/{peer}/read", h: s.dmRead},
		{Method: "GET", Path: "/api/v1/peers", h: s.peers},
		{Method: "PUT", Path: "/api/v1/nick", h: s.nick},
		{Method: "GET", Path: "/api/v1/outbox", h: s.outbox},
		{Method: "GET", Path: "/api/v1/events", h: s.events},
		{Method: "GET", Path: "/api/v1/export", h: s.export},
	}
	paths := http.NewServeMux() // each route's path, for any method
	for _, rt := range s.routes {
		h := s.api(rt)
		if !rt.public {
			h = s.auth(h)
		}
		s.mux.Handle(rt.Method+" "+rt.Path, h)
		if _, pattern := paths.Handler(&http.Request{Method: "GET", URL: &url.URL{Path: rt.Path}}); pattern == "" {
			paths.Handle(rt.Path, http.NotFoundHandler())
		}
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("no API route %s %s", r.Method, r.URL.Path))
	})
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	page, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, err
	}
	servePage := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(page)
	}
	s.mux.HandleFunc("GET /{$}", servePage)
	s.mux.HandleFunc("GET /login", servePage)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	return s, nil
}

// Handler returns the server's handler with its protections: host check,
// cross-origin protection, security headers.
func (s *Server) Handler() http.Handler {
	var h http.Handler = s.mux
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, errors.New("cross-origin request refused: only this node's own web app may change things here"))
	}))
	h = cop.Handler(h)
	h = s.hostCheck(h)
	return securityHeaders(h)
}

// Serve serves on ln until ctx ends, then shuts down: open event streams
// end, requests under way get a moment to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("web server: %w", err)
	case <-ctx.Done():
	}
	// Requests end with ctx (event streams too); a connection still busy
	// after a few seconds (a tab on a stalled network mid-write) is
	// closed: stopping the node must not fail because of it.
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Debug("web server: closing connections still busy at shutdown", "err", err)
		srv.Close()
	}
	<-done
	return nil
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// Scripts and styles only from this node: no inline script, so
		// even a message that slipped into the DOM as HTML could not run.
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// hostCheck refuses, on a loopback listener, requests whose Host is not a
// loopback name: a page on another site that rebinds its DNS name to
// 127.0.0.1 sends its own name.
func (s *Server) hostCheck(h http.Handler) http.Handler {
	if !s.cfg.Loopback {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.Trim(host, "[]")
		ip := net.ParseIP(host)
		if !(strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q refused: this node answers only to localhost, 127.0.0.1 or [::1]", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sessionValue is the cookie value for the token: derived from it, so the
// token itself is not stored in the browser's cookie jar.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("parley web session"))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) authorized(r *http.Request) bool {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(v)), []byte(s.cfg.Token)) == 1
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(sessionValue(s.cfg.Token))) == 1
	}
	return false
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			writeError(w, http.StatusUnauthorized, errors.New("not logged in: open the link parley printed (…/login#TOKEN), or send Authorization: Bearer TOKEN"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// api turns a route's error into a JSON error response.
func (s *Server) api(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		if err := rt.h(w, r); err != nil {
			status := statusOf(err)
			if status >= 500 {
				s.log.Warn("web api", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, status, err)
		}
	})
}

// httpError is an error with the status it answers.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decode reads a JSON body into v: one object, no unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return &httpError{http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", MaxBodyBytes)}
		case errors.Is(err, io.EOF):
			return badRequest("body: a JSON object is needed")
		default:
			return badRequest("body: %v", err)
		}
	}
	if dec.More() {
		return badRequest("body: one JSON object only")
	}
	return nil
}
