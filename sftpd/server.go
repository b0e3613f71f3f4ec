package sftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
)

// ObjectStore is what the SFTP server needs from the bucket.
type ObjectStore interface {
	// Put stores body (size bytes) at key, complete or not at all.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
	// List calls fn for every object under prefix, in key order.
	List(ctx context.Context, prefix string, fn func(lessee.Object) error) error
	// Download writes the object at key to w; an error with code
	// lessee.ENOTFOUND if missing.
	Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (lessee.Object, error)
}

// Intake queues an upload as soon as it is stored; *intake.Intake
// satisfies it.
type Intake interface {
	Seen(ctx context.Context, key string) (intake.Sighting, error)
}

var _ Intake = (*intake.Intake)(nil)

// Defaults and fixed limits.
const (
	DefaultMaxAuthTries = 3
	handshakeTimeout    = 30 * time.Second
	// maxOpenUploads bounds the spool files one session holds at once.
	maxOpenUploads = 4
	// storeTimeout bounds one Put or Download of a whole file.
	storeTimeout = 30 * time.Minute
	// Temporary file patterns under Config.TempDir.
	uploadPattern   = "sftp-upload-*"
	downloadPattern = "sftp-download-*"
)

// Config configures a Server.
type Config struct {
	// Addr is where ListenAndServe listens, e.g. "127.0.0.1:2022".
	Addr string
	// HostKeyDir holds HostKeyFile; created with the key on first start.
	HostKeyDir string
	// UsersFile is the users file (see the package documentation).
	UsersFile string
	// TempDir holds uploads until they are complete and receipts while they
	// are read; empty means os.TempDir().
	TempDir string
	// MaxFileBytes is the largest accepted upload; 0 means no limit.
	MaxFileBytes int64
	// MaxAuthTries is the number of authentication attempts per connection;
	// 0 means DefaultMaxAuthTries.
	MaxAuthTries int
	// Intake, if set, is told of every stored upload, so that it is queued
	// at once rather than at the next inbox scan.
	Intake Intake
	// QueueFaults, if set, counts uploads stored but not queued (the inbox
	// scan queues them instead).
	QueueFaults interface{ Inc() }
}

// Server is an SFTP server over an ObjectStore.
type Server struct {
	cfg     Config
	objects ObjectStore
	log     *slog.Logger
	users   *Users
	ssh     *ssh.ServerConfig
	hostKey ssh.PublicKey
	// dummyHash is compared against for unknown users (see checkPassword).
	dummyHash []byte
}

// Extension keys in ssh.Permissions.
const (
	extOrgNr  = "orgnr"
	extMethod = "method"
)

// New loads the users file and the host key (creating it if missing) and
// removes spool files a crash left in TempDir.
func New(cfg Config, objects ObjectStore, log *slog.Logger) (*Server, error) {
	if objects == nil {
		return nil, errors.New("sftp: no object store")
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.HostKeyDir == "" {
		return nil, errors.New("sftp: empty host key directory")
	}
	if cfg.UsersFile == "" {
		return nil, errors.New("sftp: empty users file")
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.MaxAuthTries <= 0 {
		cfg.MaxAuthTries = DefaultMaxAuthTries
	}
	if err := os.MkdirAll(cfg.TempDir, 0o750); err != nil {
		return nil, fmt.Errorf("sftp: temp dir: %w", err)
	}
	removeLeftovers(cfg.TempDir, log)
	users, err := LoadUsers(cfg.UsersFile)
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	signer, err := loadOrCreateHostKey(cfg.HostKeyDir, log)
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	s := &Server{cfg: cfg, objects: objects, log: log, users: users, hostKey: signer.PublicKey(), dummyHash: dummy}
	s.ssh = &ssh.ServerConfig{
		MaxAuthTries:      cfg.MaxAuthTries,
		ServerVersion:     "SSH-2.0-lessee-sftp",
		PasswordCallback:  s.checkPassword,
		PublicKeyCallback: s.checkKey,
		AuthLogCallback:   s.logAuth,
	}
	s.ssh.AddHostKey(signer)
	log.Info("sftp: ready", "users", len(users.byName), "host_key", ssh.FingerprintSHA256(s.hostKey))
	return s, nil
}

// HostKey returns the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey }

// removeLeftovers deletes spool files from an earlier run. Removing a file
// another process still has open does not disturb it (POSIX unlink).
func removeLeftovers(dir string, log *slog.Logger) {
	for _, pattern := range []string{uploadPattern, downloadPattern} {
		names, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, n := range names {
			if err := os.Remove(n); err != nil {
				log.Warn("sftp: remove leftover spool file", "file", n, "err", err)
			}
		}
	}
}

func (s *Server) checkPassword(c ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
	orgnr, ok := s.users.checkPassword(c.User(), password, s.dummyHash)
	if !ok {
		return nil, errors.New("wrong user name or password")
	}
	return &ssh.Permissions{Extensions: map[string]string{extOrgNr: orgnr, extMethod: "password"}}, nil
}

func (s *Server) checkKey(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	orgnr, ok := s.users.checkKey(c.User(), key)
	if !ok {
		return nil, errors.New("public key not authorized")
	}
	return &ssh.Permissions{Extensions: map[string]string{
		extOrgNr: orgnr, extMethod: "publickey " + ssh.FingerprintSHA256(key),
	}}, nil
}

func (s *Server) logAuth(c ssh.ConnMetadata, method string, err error) {
	// "none" is every client's first probe; a public key is often offered
	// and refused before the right one: debug, not noise.
	if err == nil || method == "none" {
		return
	}
	s.log.Debug("sftp: authentication attempt failed", "user", c.User(), "remote", c.RemoteAddr().String(), "method", method)
}

// ListenAndServe listens on Config.Addr and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sftp: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx is done, then closes ln and
// every connection (uploads not yet closed are discarded) and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	s.log.Info("sftp: listening", "addr", ln.Addr().String())
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
	ln.Close()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("sftp: accept: %w", err)
}

// serveConn runs one SSH connection.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	remote := c.RemoteAddr().String()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(c, s.ssh)
	if err != nil {
		s.log.Info("sftp: handshake failed", "remote", remote, "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sconn.Close()
	orgnr := sconn.Permissions.Extensions[extOrgNr]
	log := s.log.With("user", sconn.User(), "orgnr", orgnr, "remote", remote)
	log.Info("sftp: logged in", "method", sconn.Permissions.Extensions[extMethod])
	defer log.Info("sftp: disconnected")

	// Global requests are tcpip-forward and friends: all refused.
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			log.Info("sftp: refused channel", "type", nc.ChannelType())
			_ = nc.Reject(ssh.Prohibited, "only the sftp subsystem is available")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			log.Info("sftp: accept channel", "err", err)
			continue
		}
		sess := &session{srv: s, ctx: ctx, orgnr: orgnr, log: log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess.serveChannel(ch, chReqs)
		}()
	}
}

// serveChannel answers a session channel's requests: "subsystem sftp" once,
// everything else (shell, exec, pty-req, env, agent, x11) is refused.
func (sess *session) serveChannel(ch ssh.Channel, reqs <-chan *ssh.Request) {
	started := false
	done := make(chan struct{})
	for req := range reqs {
		ok := false
		if req.Type == "subsystem" && !started {
			var p struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &p); err == nil && p.Name == "sftp" {
				ok = true
			}
		}
		if !ok {
			sess.log.Debug("sftp: refused request", "type", req.Type)
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		}
		started = true
		_ = req.Reply(true, nil)
		go func() {
			defer close(done)
			sess.runSFTP(ch)
		}()
	}
	if started {
		<-done
	} else {
		ch.Close()
	}
}

func (sess *session) runSFTP(ch ssh.Channel) {
	h := sftp.Handlers{FileGet: sess, FilePut: sess, FileCmd: sess, FileList: sess}
	rs := sftp.NewRequestServer(ch, h, sftp.WithStartDirectory("/"))
	err := rs.Serve()
	if err != nil && !errors.Is(err, io.EOF) {
		sess.log.Info("sftp: session ended", "err", err)
	}
	// OpenSSH's sftp exits 0 either way; the status is for other clients.
	status := struct{ Status uint32 }{0}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(&status))
	rs.Close()
}
