package sftpd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/s3store"
)

// Two organisations from the demo registry.
const (
	orgA = "912345602"
	orgB = "912345610"
)

// Passwords of the test users; the tests check they never reach the log.
const (
	alicePassword = "alice-Secret-pw-1"
	bobPassword   = "bob-Secret-pw-2"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testUser is a user with a key pair on disk.
type testUser struct {
	name, orgnr, password string
	keyFile               string // OpenSSH private key, 0600
	signer                ssh.Signer
	authorized            string // authorized_keys line
}

func newTestUser(t *testing.T, dir, name, orgnr, password string) testUser {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, name+"_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + name + "@test"
	return testUser{name: name, orgnr: orgnr, password: password, keyFile: keyFile, signer: signer, authorized: line}
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testBundle is a running SFTP server over a real embedded S3 endpoint.
type testBundle struct {
	addr    string
	port    string
	objects *s3store.Client
	srv     *Server
	tempDir string
	logs    *lockedBuffer
	alice   testUser
	bob     testUser
	dir     string // scratch directory for keys and local files
}

// setup starts the embedded S3 server and the SFTP server with two users,
// alice (orgA: key and password) and bob (orgB: key and password).
func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	dir := t.TempDir()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	s3srv, err := s3store.NewServer(s3store.ServerConfig{Dir: filepath.Join(dir, "s3"), Bucket: "lessee", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s3ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = s3srv.Serve(ctx, s3ln) }()
	objects, err := s3store.NewClient(ctx, s3store.Config{Endpoint: "http://" + s3ln.Addr().String(), AccessKey: "k", SecretKey: "s", Bucket: "lessee"})
	if err != nil {
		t.Fatal(err)
	}

	b := &testBundle{objects: objects, logs: logs, dir: dir}
	b.alice = newTestUser(t, dir, "alice", orgA, alicePassword)
	b.bob = newTestUser(t, dir, "bob", orgB, bobPassword)
	users := strings.Join([]string{
		"# test users",
		"alice:" + orgA + ":" + b.alice.authorized,
		"alice:" + orgA + ":" + bcryptHash(t, alicePassword),
		"bob:" + orgB + ":" + b.bob.authorized,
		"bob:" + orgB + ":" + bcryptHash(t, bobPassword),
	}, "\n")
	cfg.UsersFile = filepath.Join(dir, "users")
	if err := os.WriteFile(cfg.UsersFile, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyDir = filepath.Join(dir, "data")
	cfg.TempDir = filepath.Join(dir, "tmp")
	b.tempDir = cfg.TempDir
	srv, err := New(cfg, objects, log)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	_, b.port, _ = net.SplitHostPort(b.addr)
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return b
}

// put stores an object directly in the bucket.
func (b *testBundle) put(t *testing.T, key, body string) {
	t.Helper()
	if err := b.objects.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), "text/csv"); err != nil {
		t.Fatal(err)
	}
}

// get reads an object directly from the bucket.
func (b *testBundle) get(t *testing.T, key string) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.objects.Download(context.Background(), key, "", &buf); err != nil {
		t.Fatalf("download %s: %v", key, err)
	}
	return buf.String()
}

// keys lists every key in the bucket, sorted.
func (b *testBundle) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := b.objects.List(context.Background(), "", func(o lessee.Object) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

// spoolFiles returns the spool files left in the temp dir.
func (b *testBundle) spoolFiles(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(b.tempDir, "sftp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoSecrets fails if a password or private key reached the log.
func (b *testBundle) checkNoSecrets(t *testing.T) {
	t.Helper()
	logs := b.logs.String()
	for _, secret := range []string{alicePassword, bobPassword, "PRIVATE KEY", "$2a$"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret (%q)", secret)
		}
	}
}
