package dispatch

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Dispatcher.
type Config struct {
	Backend  Backend
	Secret   []byte        // signs cookies and derives peers' API tokens; keep it across restarts
	Pool     int           // started peers kept ready for new visitors
	MaxPeers int           // peers in all (pool, running, stopped with data kept)
	Idle     time.Duration // a visitor's peer with no request for this long is stopped
	Keep     time.Duration // a stopped peer's data is kept this long
	// StartRate and StartBurst bound how many peers one client address
	// may ask for.
	StartRate  rate.Limit
	StartBurst int
	// ReadyTimeout bounds the wait for a started peer's web app.
	ReadyTimeout time.Duration
	// Sync is how often the view is rebuilt from the backend.
	Sync   time.Duration
	Logger *slog.Logger
	// Event, if set, is told what happens (one map per event, for --json).
	Event func(kind string, kv ...any)
	// Ephemeral removes every peer and its data when Run ends (demos,
	// tests); otherwise peers outlive the dispatcher.
	Ephemeral bool
}

// Errors of claiming a peer.
var (
	ErrFull = errors.New("every peer is taken")
)

// cookieName is the visitor's cookie.
const cookieName = "parley_visitor"

type peerState struct {
	Peer
	lastSeen time.Time
	claiming bool // being handed to a visitor
}

// Dispatcher is a running dispatcher.
type Dispatcher struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	peers    map[string]*peerState
	creating int // pool peers being created
	limiters map[string]*rate.Limiter
	synced   bool      // the view was built from the backend at least once
	lastSync time.Time // when it was last built
	down     error

	wake chan struct{} // the pool may need refilling
}

// New checks cfg and returns a dispatcher; Run starts its work.
func New(cfg Config) (*Dispatcher, error) {
	switch {
	case cfg.Backend == nil:
		return nil, errors.New("dispatch: no backend")
	case len(cfg.Secret) < 16:
		return nil, errors.New("dispatch: secret missing or too short")
	case cfg.Pool < 0 || cfg.MaxPeers <= 0 || cfg.Pool > cfg.MaxPeers:
		return nil, fmt.Errorf("dispatch: pool %d and max peers %d: want 0 ≤ pool ≤ max peers, max peers > 0", cfg.Pool, cfg.MaxPeers)
	case cfg.Idle <= 0 || cfg.Keep <= 0:
		return nil, errors.New("dispatch: idle and keep times must be positive")
	}
	if cfg.StartRate == 0 {
		cfg.StartRate, cfg.StartBurst = rate.Every(10*time.Second), 3
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 20 * time.Second
	}
	if cfg.Sync == 0 {
		cfg.Sync = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Event == nil {
		cfg.Event = func(string, ...any) {}
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger, peers: make(map[string]*peerState),
		limiters: make(map[string]*rate.Limiter), wake: make(chan struct{}, 1)}, nil
}

func (d *Dispatcher) sign(kind, id string) string {
	m := hmac.New(sha256.New, d.cfg.Secret)
	m.Write([]byte(kind + ":" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// token is a peer's web API token: derived, so nothing needs storing.
func (d *Dispatcher) token(id string) string { return d.sign("token", id) }

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run syncs with the backend, keeps the pool filled and stops idle peers
// until ctx ends. Peers are left as they are when it returns: they
// survive a dispatcher restart.
func (d *Dispatcher) Run(ctx context.Context) error {
	tick := time.NewTicker(min(d.cfg.Sync, max(d.cfg.Idle/4, 250*time.Millisecond)))
	defer tick.Stop()
	lastSync := time.Time{}
	if d.cfg.Ephemeral {
		defer d.removeAll()
	}
	for {
		if time.Since(lastSync) >= d.cfg.Sync || !d.isSynced() {
			d.sync(ctx)
			lastSync = time.Now()
		}
		d.cull(ctx)
		d.refill(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// removeAll removes every peer of this dispatcher and its data.
func (d *Dispatcher) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := d.cfg.Backend.List(ctx)
	if err != nil {
		d.log.Warn("remove peers at exit", "err", err)
		return
	}
	for _, p := range ps {
		if err := d.cfg.Backend.Remove(ctx, p.ID); err != nil {
			d.log.Warn("remove peer at exit", "peer", p.ID, "err", err)
		}
	}
}

func (d *Dispatcher) isSynced() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.synced
}

// sync rebuilds the view from the backend; what only the dispatcher knows
// (when a visitor was last seen) is kept.
func (d *Dispatcher) sync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ps, err := d.cfg.Backend.List(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if d.down == nil {
			d.log.Warn("the container engine does not answer; retrying", "err", err)
			d.cfg.Event("engine-down", "error", err.Error())
		}
		d.down = err
		return
	}
	if d.down != nil {
		d.log.Info("the container engine answers again")
		d.cfg.Event("engine-up")
	}
	d.down = nil
	now := time.Now()
	next := make(map[string]*peerState, len(ps))
	for _, p := range ps {
		st := &peerState{Peer: p, lastSeen: now}
		if old, ok := d.peers[p.ID]; ok {
			st.lastSeen, st.claiming = old.lastSeen, old.claiming
			st.Claimed = st.Claimed || old.claiming
		}
		next[p.ID] = st
	}
	d.peers = next
	d.synced = true
	d.lastSync = time.Now()
}

// counts returns the ready pool peers and the peers in all.
func (d *Dispatcher) counts() (pool, total int) {
	for _, p := range d.peers {
		if !p.Claimed && !p.claiming && p.Running {
			pool++
		}
	}
	return pool, len(d.peers) + d.creating
}

// refill starts pool peers until the pool is full or MaxPeers reached.
func (d *Dispatcher) refill(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		pool, total := d.counts()
		if !d.synced || d.down != nil || pool+d.creating >= d.cfg.Pool || total >= d.cfg.MaxPeers {
			d.mu.Unlock()
			return
		}
		d.creating++
		d.mu.Unlock()
		id, err := d.create(ctx, false)
		if err != nil {
			d.log.Warn("start a pool peer", "err", err)
			d.cfg.Event("error", "error", "start a pool peer: "+err.Error())
			return
		}
		d.cfg.Event("pool-peer", "peer", id)
	}
}

// cull stops visitors' peers that were idle too long and removes the
// data of peers stopped longer than Keep, and pool peers that died.
func (d *Dispatcher) cull(ctx context.Context) {
	now := time.Now()
	var stop, remove []string
	d.mu.Lock()
	for id, p := range d.peers {
		switch {
		case p.claiming:
		case !p.Claimed && (p.Exited || p.Gone):
			remove = append(remove, id) // a pool peer that died: replaced by refill
		case p.Claimed && p.Running && now.Sub(p.lastSeen) >= d.cfg.Idle:
			stop = append(stop, id)
		case p.Claimed && (p.Exited || p.Gone) && !p.Stopped.IsZero() && now.Sub(p.Stopped) >= d.cfg.Keep:
			remove = append(remove, id)
		}
	}
	d.mu.Unlock()
	for _, id := range stop {
		if err := d.cfg.Backend.Stop(ctx, id); err != nil {
			d.log.Warn("stop idle peer", "peer", id, "err", err)
			continue
		}
		d.mu.Lock()
		if p, ok := d.peers[id]; ok {
			p.Running, p.Exited, p.Stopped = false, true, time.Now()
		}
		d.mu.Unlock()
		d.cfg.Event("peer-stopped", "peer", id, "reason", "idle")
	}
	for _, id := range remove {
		if err := d.cfg.Backend.Remove(ctx, id); err != nil {
			d.log.Warn("remove peer", "peer", id, "err", err)
			continue
		}
		d.mu.Lock()
		delete(d.peers, id)
		d.mu.Unlock()
		d.cfg.Event("peer-removed", "peer", id)
	}
	if len(remove) > 0 {
		d.poke()
	}
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// claim gives a new visitor a peer: a ready pool peer if there is one,
// else a new one while MaxPeers allows.
func (d *Dispatcher) claim(ctx context.Context) (string, error) {
	d.mu.Lock()
	if d.down != nil {
		err := d.down
		d.mu.Unlock()
		return "", fmt.Errorf("container engine: %w", err)
	}
	// A pool peer that cannot be claimed (its container gone: removed, or
	// died under load) is dropped and the next one tried: the visitor
	// gets a peer all the same, a new one if the pool runs out.
	for range 3 {
		var pick *peerState
		for _, p := range d.peers {
			if !p.Claimed && !p.claiming && p.Running {
				pick = p
				break
			}
		}
		if pick == nil {
			break
		}
		pick.claiming = true
		d.mu.Unlock()
		d.poke() // refill behind it
		err := d.cfg.Backend.Claim(ctx, pick.ID)
		d.mu.Lock()
		pick.claiming = false
		if err != nil {
			if ctx.Err() != nil {
				d.mu.Unlock()
				return "", err
			}
			d.log.Warn("claim a pool peer; dropping it", "peer", pick.ID, "err", err)
			delete(d.peers, pick.ID)
			d.mu.Unlock()
			d.cfg.Backend.Remove(context.WithoutCancel(ctx), pick.ID)
			d.mu.Lock()
			continue
		}
		pick.Claimed, pick.lastSeen = true, time.Now()
		d.mu.Unlock()
		d.cfg.Event("peer-claimed", "peer", pick.ID, "from", "pool")
		return pick.ID, nil
	}
	if _, total := d.counts(); total >= d.cfg.MaxPeers {
		d.mu.Unlock()
		return "", ErrFull
	}
	d.creating++
	d.mu.Unlock()
	id, err := d.create(ctx, true)
	if err != nil {
		return "", err
	}
	d.cfg.Event("peer-claimed", "peer", id, "from", "new")
	return id, nil
}

// create starts a new peer, counted in d.creating by the caller, and adds
// it to the view once its web app answers: a visitor who gets it can chat
// at once. A peer that fails to start is removed again.
func (d *Dispatcher) create(ctx context.Context, claimed bool) (string, error) {
	id := newID()
	p, err := d.cfg.Backend.Create(ctx, id, d.token(id), claimed)
	if err == nil {
		err = d.waitReady(ctx, p.Addr)
	}
	d.mu.Lock()
	d.creating--
	if err == nil {
		d.peers[id] = &peerState{Peer: p, lastSeen: time.Now()}
	}
	d.mu.Unlock()
	if err != nil {
		d.cfg.Backend.Remove(context.WithoutCancel(ctx), id)
		return "", err
	}
	return id, nil
}

// ensure returns the address of visitor id's peer, starting it again if
// it was stopped, or making a new container on its kept data if the
// container is gone.
func (d *Dispatcher) ensure(ctx context.Context, id string) (string, error) {
	d.known(ctx, id)
	d.mu.Lock()
	p, ok := d.peers[id]
	var snapshot Peer
	if ok {
		p.lastSeen = time.Now()
		snapshot = p.Peer
	}
	down := d.down
	d.mu.Unlock()
	if !ok {
		return "", errUnknownVisitor
	}
	if snapshot.Running && snapshot.Addr != "" {
		return snapshot.Addr, nil
	}
	if down != nil {
		return "", fmt.Errorf("container engine: %w", down)
	}
	var np Peer
	var err error
	if snapshot.Gone {
		np, err = d.cfg.Backend.Recreate(ctx, id, d.token(id))
	} else {
		np, err = d.cfg.Backend.Start(ctx, id)
		if errors.Is(err, ErrNoContainer) {
			np, err = d.cfg.Backend.Recreate(ctx, id, d.token(id))
		}
	}
	if err != nil {
		return "", err
	}
	np.Claimed = true
	if err := d.waitReady(ctx, np.Addr); err != nil {
		return "", err
	}
	d.mu.Lock()
	if p, ok := d.peers[id]; ok {
		p.Peer, p.lastSeen = np, time.Now()
	}
	d.mu.Unlock()
	d.cfg.Event("peer-started", "peer", id)
	return np.Addr, nil
}

var errUnknownVisitor = errors.New("no peer for this visitor")

// known reports whether visitor id has a peer. A visitor the view lacks
// (the dispatcher just started, or another change) makes it look at the
// backend again, at most once a second.
func (d *Dispatcher) known(ctx context.Context, id string) bool {
	d.mu.Lock()
	_, ok := d.peers[id]
	stale := time.Since(d.lastSync) > time.Second
	d.mu.Unlock()
	if ok || !stale {
		return ok
	}
	d.sync(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok = d.peers[id]
	return ok
}

// waitReady waits until a peer's web app answers.
func (d *Dispatcher) waitReady(ctx context.Context, addr string) error {
	if addr == "" {
		return errors.New("the peer has no address on the dispatcher's network")
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/openapi.json", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the peer's web app did not answer within %v", d.cfg.ReadyTimeout)
		case <-tick.C:
		}
	}
}

// visitor returns the peer ID in a valid cookie, or "".
func (d *Dispatcher) visitor(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	id, sig, ok := strings.Cut(c.Value, ".")
	if !ok || len(id) != 16 || !hmac.Equal([]byte(sig), []byte(d.sign("visitor", id))) {
		return ""
	}
	return id
}

func (d *Dispatcher) setVisitor(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id + "." + d.sign("visitor", id), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int(d.cfg.Keep / time.Second)})
}

func (d *Dispatcher) allowStart(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.limiters[host]
	if l == nil {
		if len(d.limiters) > 10000 {
			clear(d.limiters)
		}
		l = rate.NewLimiter(d.cfg.StartRate, d.cfg.StartBurst)
		d.limiters[host] = l
	}
	return l.Allow()
}

//go:embed landing.html
var landingHTML string

// The landing page fills three holes of landingHTML by hand rather than
// with html/template: this package is linked into every command of the
// parley binary, and html/template's initialisers (and the template
// parsed here at init) kept ~0.3 MB of its code resident in every
// `parley join`, which never serves this page.
const (
	defaultMessage = "Chat with people here and anywhere, peer to peer. You get your own node: your messages go straight to the people you talk to."
	continueLink   = `<a class="button" href="/me/">Continue chatting</a>`
	startForm      = `<form method="post" action="/start"><button type="submit">Start chatting</button></form>`
)

// html returns the landing page for p; Title and Message are text.
func (p page) html() string {
	msg, action := p.Message, ""
	if msg == "" {
		msg = defaultMessage
	}
	switch {
	case p.Returning:
		action = continueLink
	case p.Button:
		action = startForm
	}
	// One pass over landingHTML: what is put in is not looked at again.
	return strings.NewReplacer(
		"{{title}}", html.EscapeString(p.Title),
		"{{message}}", html.EscapeString(msg),
		"{{action}}", action,
	).Replace(landingHTML)
}

type page struct {
	Title, Message string
	Returning      bool
	Button         bool
}

func render(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	io.WriteString(w, p.html())
}

// Handler serves the landing page, /start and each visitor's /me/.
func (d *Dispatcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		id := d.visitor(r)
		render(w, http.StatusOK, page{Title: "Parley", Returning: id != "" && d.known(r.Context(), id), Button: true})
	})
	mux.HandleFunc("POST /start", d.start)
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/me/", http.StatusSeeOther) })
	mux.Handle("/me/", http.HandlerFunc(d.proxy))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		down := d.down
		d.mu.Unlock()
		if down != nil {
			http.Error(w, "container engine: "+down.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return http.NewCrossOriginProtection().Handler(mux)
}

func (d *Dispatcher) start(w http.ResponseWriter, r *http.Request) {
	if id := d.visitor(r); id != "" && d.known(r.Context(), id) {
		http.Redirect(w, r, "/me/", http.StatusSeeOther)
		return
	}
	if !d.allowStart(r) {
		render(w, http.StatusTooManyRequests, page{Title: "Slow down", Message: "You asked for several peers in a short time. Wait a little and try again."})
		return
	}
	id, err := d.claim(r.Context())
	switch {
	case errors.Is(err, ErrFull):
		render(w, http.StatusServiceUnavailable, page{Title: "Full right now", Message: "Every seat is taken at the moment. Please try again in a few minutes.", Button: true})
		return
	case err != nil:
		d.log.Warn("give a visitor a peer", "err", err)
		render(w, http.StatusServiceUnavailable, page{Title: "Not available", Message: "We cannot start a chat for you right now. Please try again in a minute.", Button: true})
		return
	}
	d.setVisitor(w, r, id)
	http.Redirect(w, r, "/me/", http.StatusSeeOther)
}

// proxy serves /me/… from the visitor's own peer.
func (d *Dispatcher) proxy(w http.ResponseWriter, r *http.Request) {
	id := d.visitor(r)
	if id == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	addr, err := d.ensure(r.Context(), id)
	switch {
	case errors.Is(err, errUnknownVisitor):
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	case err != nil:
		d.log.Warn("reach a visitor's peer", "peer", id, "err", err)
		render(w, http.StatusServiceUnavailable, page{Title: "One moment", Message: "Your chat cannot be reached right now. Please reload in a minute; nothing is lost."})
		return
	}
	token := d.token(id)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/me")
			pr.Out.URL.RawPath = ""
			// The peer checks cross-origin requests against Host: keep the
			// visitor's.
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set("Authorization", "Bearer "+token)
			pr.Out.Header.Del("Cookie")
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			d.log.Warn("proxy to a visitor's peer", "peer", id, "err", err)
			d.mu.Lock()
			if p, ok := d.peers[id]; ok {
				p.Running = false // look again on the next request: it may have died
			}
			d.mu.Unlock()
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}
