package sftpd

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// dial connects with the given auth methods, checking the host key.
func (b *testBundle) dial(t *testing.T, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", b.addr, &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: ssh.FixedHostKey(b.srv.HostKey()),
		Timeout:         5 * time.Second,
	})
}

// sftpClient logs in with a password and opens the sftp subsystem.
func (b *testBundle) sftpClient(t *testing.T, user, password string) (*ssh.Client, *sftp.Client) {
	t.Helper()
	conn, err := b.dial(t, user, ssh.Password(password))
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("sftp subsystem: %v", err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return conn, c
}

func TestPasswordAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	t.Run("OK", func(t *testing.T) {
		_, c := b.sftpClient(t, "alice", alicePassword)
		f, err := c.Create("/inbox/by-password.csv")
		if err != nil {
			t.Fatal(err)
		}
		body := strings.Repeat("regnr;vin\n", 10000)
		if _, err := f.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if got := b.get(t, "inbox/"+orgA+"/by-password.csv"); got != body {
			t.Errorf("stored %d bytes, want %d", len(got), len(body))
		}
		// The pending upload is listed, but cannot be read back.
		entries, err := c.ReadDir("/inbox")
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "by-password.csv" || entries[0].Size() != int64(len(body)) {
			t.Errorf("ls /inbox = %v", names(entries))
		}
		if _, err := c.Open("/inbox/by-password.csv"); !isDenied(err) {
			t.Errorf("reading an upload back: err = %v, want permission denied", err)
		}
	})

	refused := []struct {
		name, user, password string
	}{
		{"ErrWrongPassword", "alice", bobPassword},
		{"ErrUnknownUser", "mallory", alicePassword},
		{"ErrEmptyPassword", "bob", ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := b.dial(t, tc.user, ssh.Password(tc.password))
			if err == nil {
				conn.Close()
				t.Fatal("login succeeded")
			}
		})
	}

	t.Run("ErrOtherUsersKey", func(t *testing.T) {
		conn, err := b.dial(t, "bob", ssh.PublicKeys(b.alice.signer))
		if err == nil {
			conn.Close()
			t.Fatal("bob logged in with alice's key")
		}
	})

	t.Run("ErrTooManyAttempts", func(t *testing.T) {
		tries := 0
		pw := ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			tries++
			return "wrong", nil
		}), 20)
		conn, err := b.dial(t, "alice", pw)
		if err == nil {
			conn.Close()
			t.Fatal("login succeeded")
		}
		if tries > DefaultMaxAuthTries {
			t.Errorf("server allowed %d password attempts, want at most %d", tries, DefaultMaxAuthTries)
		}
	})
	b.checkNoSecrets(t)
}

func TestKilledUploadLeavesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	conn, c := b.sftpClient(t, "bob", bobPassword)
	f, err := c.Create("/inbox/killed.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("x"), 256<<10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a spool file", func() bool { return len(b.spoolFiles(t)) == 1 })
	// The connection dies without the handle being closed.
	conn.Close()
	waitFor(t, "the spool file to be removed", func() bool { return len(b.spoolFiles(t)) == 0 })
	waitFor(t, "the discard to be logged", func() bool { return strings.Contains(b.logs.String(), "upload discarded") })
	if keys := b.keys(t); len(keys) != 0 {
		t.Errorf("bucket after a killed upload: %v", keys)
	}
}

func TestUploadRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxFileBytes: 1000})
	_, c := b.sftpClient(t, "alice", alicePassword)

	t.Run("ErrTooLarge", func(t *testing.T) {
		f, err := c.Create("/inbox/big.csv")
		if err != nil {
			t.Fatal(err)
		}
		_, werr := f.Write(bytes.Repeat([]byte("x"), 2000))
		cerr := f.Close()
		if werr == nil && cerr == nil {
			t.Fatal("a 2000-byte upload succeeded with MaxFileBytes 1000")
		}
	})

	t.Run("ErrGap", func(t *testing.T) {
		// What a resumed upload does: write from an offset into a new handle.
		f, err := c.OpenFile("/inbox/resumed.csv", os.O_WRONLY|os.O_CREATE)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("second half"), 100); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err == nil {
			t.Fatal("an upload with a gap was stored")
		}
	})

	t.Run("ErrBadName", func(t *testing.T) {
		for _, name := range []string{"/inbox/a..b.csv", "/inbox/tab\there.csv", "/inbox/" + strings.Repeat("n", 300)} {
			if f, err := c.Create(name); err == nil {
				f.Close()
				t.Errorf("create %q succeeded", name)
			}
		}
	})

	t.Run("ErrTooManyOpen", func(t *testing.T) {
		var open []*sftp.File
		defer func() {
			for _, f := range open {
				f.Close()
			}
		}()
		for i := range maxOpenUploads {
			f, err := c.Create("/inbox/open" + string(rune('a'+i)) + ".csv")
			if err != nil {
				t.Fatalf("upload %d: %v", i, err)
			}
			open = append(open, f)
		}
		if f, err := c.Create("/inbox/one-too-many.csv"); err == nil {
			f.Close()
			t.Fatal("more than maxOpenUploads uploads open at once")
		}
	})

	waitFor(t, "spool files to be removed", func() bool { return len(b.spoolFiles(t)) == 0 })
	// ErrTooManyOpen closed its empty uploads normally: those are stored.
	for _, k := range b.keys(t) {
		if !strings.HasPrefix(k, "inbox/"+orgA+"/open") {
			t.Errorf("unexpected object %s", k)
		}
	}
}

func TestOnlySFTPSubsystem(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	conn, err := b.dial(t, "alice", ssh.PublicKeys(b.alice.signer))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	t.Run("ErrExec", func(t *testing.T) {
		s, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if out, err := s.CombinedOutput("id"); err == nil {
			t.Errorf("exec succeeded: %q", out)
		}
	})
	t.Run("ErrShell", func(t *testing.T) {
		s, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
			t.Error("pty granted")
		}
		if err := s.Shell(); err == nil {
			t.Error("shell granted")
		}
	})
	t.Run("ErrOtherSubsystem", func(t *testing.T) {
		s, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.RequestSubsystem("netconf"); err == nil {
			t.Error("subsystem netconf granted")
		}
	})
	t.Run("ErrAgentForwarding", func(t *testing.T) {
		s, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ok, err := s.SendRequest("auth-agent-req@openssh.com", true, nil)
		if err != nil || ok {
			t.Errorf("agent forwarding: ok=%v err=%v, want refused", ok, err)
		}
	})
	t.Run("ErrDirectTCPIP", func(t *testing.T) {
		c, err := conn.Dial("tcp", b.objects.Bucket()+".invalid:80")
		if err == nil {
			c.Close()
			t.Fatal("port forwarding (direct-tcpip) granted")
		}
		var oc *ssh.OpenChannelError
		if !errors.As(err, &oc) || oc.Reason != ssh.Prohibited {
			t.Errorf("err = %v, want channel open prohibited", err)
		}
	})
	t.Run("ErrRemoteForward", func(t *testing.T) {
		ln, err := conn.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			ln.Close()
			t.Fatal("remote port forwarding (tcpip-forward) granted")
		}
	})
	t.Run("OK", func(t *testing.T) {
		// The connection still serves sftp after all of that.
		c, err := sftp.NewClient(conn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		entries, err := c.ReadDir("/")
		if err != nil {
			t.Fatal(err)
		}
		if got := names(entries); !slices.Equal(got, []string{"dryrun", "dryrun-snapshot", "exports", "inbox", "receipts", "snapshot"}) {
			t.Errorf("ls / = %v", got)
		}
	})
}

func TestHostKeyPersisted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	u := newTestUser(t, dir, "alice", orgA, "")
	if err := os.WriteFile(users, []byte("alice:"+orgA+":"+u.authorized+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{HostKeyDir: filepath.Join(dir, "data"), UsersFile: users, TempDir: filepath.Join(dir, "tmp")}
	log := slog.New(slog.DiscardHandler)
	first, err := New(cfg, nopStore{}, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(cfg.HostKeyDir, HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v, want 0600", fi.Mode().Perm())
	}
	if first.HostKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s", first.HostKey().Type())
	}
	second, err := New(cfg, nopStore{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.HostKey().Marshal(), second.HostKey().Marshal()) {
		t.Error("host key changed across restarts")
	}
	// Only the key file is left behind.
	entries, _ := os.ReadDir(cfg.HostKeyDir)
	if len(entries) != 1 {
		t.Errorf("host key dir holds %d files", len(entries))
	}
}

func TestNewRemovesLeftoverSpoolFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	u := newTestUser(t, dir, "alice", orgA, "")
	if err := os.WriteFile(users, []byte("alice:"+orgA+":"+u.authorized+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sftp-upload-1", "sftp-download-2", "worker-keep"} {
		if err := os.WriteFile(filepath.Join(tmp, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Config{HostKeyDir: dir, UsersFile: users, TempDir: tmp}, nopStore{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(tmp)
	if got := names(dirEntriesInfo(t, entries)); !slices.Equal(got, []string{"worker-keep"}) {
		t.Errorf("temp dir after New: %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad-users")
	if err := os.WriteFile(bad, []byte("alice:123456789:$2a$04$x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{HostKeyDir: dir, UsersFile: bad, TempDir: dir}, nopStore{}, nil)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("err = %v, want the bad line reported", err)
	}
	if _, err := New(Config{HostKeyDir: dir, UsersFile: filepath.Join(dir, "missing")}, nopStore{}, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing users file: err = %v", err)
	}
}

// nopStore is an ObjectStore for tests that never reach it.
type nopStore struct{ ObjectStore }

func names(fis []os.FileInfo) []string {
	out := make([]string, len(fis))
	for i, fi := range fis {
		out[i] = fi.Name()
	}
	slices.Sort(out)
	return out
}

func dirEntriesInfo(t *testing.T, entries []os.DirEntry) []os.FileInfo {
	t.Helper()
	var out []os.FileInfo
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fi)
	}
	return out
}

// isDenied reports whether err is an SFTP "permission denied".
func isDenied(err error) bool {
	var se *sftp.StatusError
	if errors.As(err, &se) {
		return se.FxCode() == sftp.ErrSSHFxPermissionDenied
	}
	return errors.Is(err, os.ErrPermission)
}
