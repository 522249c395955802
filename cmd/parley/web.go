package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/web"
)

// webFlags are the flags of the web app, on `parley web` and on `join`.
type webFlags struct {
	webMode     bool
	addr        string
	tokenFile   string
	allowRemote bool
	noBrowser   bool
}

func (w *webFlags) register(fs *flag.FlagSet, webMode bool) {
	w.webMode = webMode
	def, help := "", "also serve the web app on HOST:PORT (e.g. "+web.DefaultAddr+"; 127.0.0.1:0 picks a free port)"
	if webMode {
		def, help = web.DefaultAddr, "serve the web app on HOST:PORT (if the default port is taken, the next free one; 127.0.0.1:0 picks any)"
	}
	fs.StringVar(&w.addr, "web", def, help)
	fs.StringVar(&w.tokenFile, "web-token-file", "", "file holding the web API token (default: <data>/api-token, created on first start)")
	fs.BoolVar(&w.allowRemote, "web-allow-remote", false, "allow a --web address other machines can reach (the API token is then the only protection)")
	if webMode {
		fs.BoolVar(&w.noBrowser, "no-browser", false, "do not open the web app in a browser")
	}
}

func (w *webFlags) check() error {
	if w.addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(w.addr)
	if err != nil {
		return fmt.Errorf("%w: --web %q: want HOST:PORT, e.g. %s", errUsage, w.addr, web.DefaultAddr)
	}
	if !web.IsLoopback(host) && !w.allowRemote {
		return fmt.Errorf("%w: --web %q can be reached from other machines: add --web-allow-remote if you mean it (the API token is then the only protection)", errUsage, w.addr)
	}
	return nil
}

// webRun is a web server ready to serve.
type webRun struct {
	srv   *web.Server
	ln    net.Listener
	url   string
	token string
}

// start listens and builds the web server for a; nil without --web.
func (w *webFlags) start(a *app.App, dataDir string, log *slog.Logger) (*webRun, error) {
	if w.addr == "" {
		return nil, nil
	}
	tokenFile := w.tokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(dataDir, "api-token")
	}
	// A dispatcher sets the token of the peers it runs.
	token := os.Getenv("PARLEY_WEB_TOKEN")
	if token == "" || w.tokenFile != "" {
		var err error
		if token, err = web.LoadOrCreateToken(tokenFile); err != nil {
			return nil, err
		}
	} else if len(token) < 16 {
		return nil, fmt.Errorf("%w: PARLEY_WEB_TOKEN must be at least 16 characters", errUsage)
	}
	host, _, _ := net.SplitHostPort(w.addr)
	loopback := web.IsLoopback(host)
	if !loopback {
		log.Warn("the web app is reachable from other machines: anyone with the API token can use this node as you", "addr", w.addr)
	}
	ln, err := web.Listen(w.addr, w.allowRemote, w.webMode && w.addr == web.DefaultAddr)
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String() + "/"
	srv, err := web.New(a, web.Config{Token: token, Loopback: loopback, Logger: log, URL: url})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &webRun{srv: srv, ln: ln, url: url, token: token}, nil
}

func (r *webRun) loginURL() string { return r.url + "login#" + r.token }

func (r *webRun) openLine() string { return "Open " + r.loginURL() }

// serve serves until a front end quits.
func (r *webRun) serve(a *app.App) error {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-a.Quitting()
		cancel()
	}()
	return r.srv.Serve(ctx, r.ln)
}

// openBrowser opens url in the desktop's browser, if there is one; it
// never fails the program.
func openBrowser(url string, log *slog.Logger) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return // no desktop: the printed link is the way in
		}
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		log.Debug("open browser", "err", err)
		return
	}
	go cmd.Wait()
}
