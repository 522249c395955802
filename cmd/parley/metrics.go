package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/internal/metrics"
	"github.com/parley-chat/parley/node"
)

// metricsFlags are --metrics and --metrics-allow-remote, on join, web and
// relay.
type metricsFlags struct {
	addr        string
	allowRemote bool
}

func (m *metricsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "metrics", "", "serve Prometheus metrics on HOST:PORT/metrics (e.g. 127.0.0.1:9464; 127.0.0.1:0 picks a free port)")
	fs.BoolVar(&m.allowRemote, "metrics-allow-remote", false, "allow a --metrics address other machines can reach (metrics have no password)")
}

func (m *metricsFlags) check() error {
	if m.addr == "" {
		return nil
	}
	if err := metrics.CheckAddr(m.addr, m.allowRemote); err != nil {
		return fmt.Errorf("%w: --metrics: %v", errUsage, err)
	}
	return nil
}

// metricsRun is the registry of a node started with --metrics, and its
// server once listening.
type metricsRun struct {
	reg *prometheus.Registry
	srv *metrics.Server
}

// start makes the registry and listens; nil without --metrics.
func (m *metricsFlags) start(log *slog.Logger) (*metricsRun, error) {
	if m.addr == "" {
		return nil, nil
	}
	reg := metrics.NewRegistry()
	srv, err := metrics.Listen(m.addr, reg, log)
	if err != nil {
		return nil, err
	}
	return &metricsRun{reg: reg, srv: srv}, nil
}

// nodeOptions registers go-libp2p's collectors on the registry.
func (r *metricsRun) nodeOptions() []node.Option {
	if r == nil {
		return nil
	}
	return []node.Option{node.WithMetrics(r.reg)}
}

func (r *metricsRun) url() string {
	if r == nil {
		return ""
	}
	return r.srv.URL()
}

// run listens (nothing without --metrics) and serves in the background
// until stop, which waits for the server to end.
func (m *metricsFlags) run(ctx context.Context, log *slog.Logger) (r *metricsRun, stop func(), err error) {
	if r, err = m.start(log); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.serve(ctx, log); close(done) }()
	return r, func() { cancel(); <-done }, nil
}

// serve serves until ctx ends; it logs rather than fails the node.
func (r *metricsRun) serve(ctx context.Context, log *slog.Logger) {
	if r == nil {
		return
	}
	if err := r.srv.Serve(ctx); err != nil {
		log.Warn("metrics server", "err", err)
	}
}
