package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// exporter writes a node's identity and a snapshot of its store as a
// .tar.gz: unpacked into a directory, `parley web --data DIR` runs the
// same peer with its history.
func exporter(dataDir, identityFile string, st *store.Store) func(io.Writer) error {
	return func(w io.Writer) error {
		if identityFile == "" {
			identityFile = filepath.Join(dataDir, node.IdentityFile)
		}
		key, err := os.ReadFile(identityFile)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		tmp, err := os.MkdirTemp(dataDir, ".export-")
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer os.RemoveAll(tmp)
		db := filepath.Join(tmp, "parley.db")
		if err := st.Snapshot(db); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		zw := gzip.NewWriter(w)
		tw := tar.NewWriter(zw)
		now := time.Now()
		if err := tw.WriteHeader(&tar.Header{Name: node.IdentityFile, Mode: 0o600, Size: int64(len(key)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(key); err != nil {
			return err
		}
		f, err := os.Open(db)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "parley.db", Mode: 0o600, Size: fi.Size(), ModTime: now}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return zw.Close()
	}
}
