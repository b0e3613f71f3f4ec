package sftpd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// HostKeyFile is the host key's file name inside Config.HostKeyDir.
const HostKeyFile = "sftp_host_ed25519_key"

// loadOrCreateHostKey reads dir/HostKeyFile, or generates and stores an
// ed25519 key there on first start.
func loadOrCreateHostKey(dir string, log *slog.Logger) (ssh.Signer, error) {
	name := filepath.Join(dir, HostKeyFile)
	signer, err := readHostKey(name, log)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return signer, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("host key: generate: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "lessee sftp host key")
	if err != nil {
		return nil, fmt.Errorf("host key: encode: %w", err)
	}
	// Written to a temporary file (CreateTemp makes it 0600) and linked into
	// place, so a second process starting at the same moment either wins or
	// reads the complete key, never half a file.
	tmp, err := os.CreateTemp(dir, ".sftp_host_key-*")
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("host key: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("host key: write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("host key: write: %w", err)
	}
	if err := os.Link(tmp.Name(), name); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("host key: %w", err)
	}
	signer, err = readHostKey(name, log)
	if err != nil {
		return nil, err
	}
	log.Info("sftp: generated a new host key", "file", name, "fingerprint", ssh.FingerprintSHA256(signer.PublicKey()))
	return signer, nil
}

func readHostKey(name string, log *slog.Logger) (ssh.Signer, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", name, err)
	}
	if fi, err := os.Stat(name); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("sftp: host key file is readable by others; chmod 600 it", "file", name, "mode", fi.Mode().Perm().String())
	}
	return signer, nil
}
