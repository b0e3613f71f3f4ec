package main

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/fleetreg/lessee/examples"
)

// TestSFTPDropEndToEnd uploads a change file over SFTP and reads its
// receipt back over SFTP, through the running service.
func TestSFTPDropEndToEnd(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-nordlys"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("nordlys:912345602:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := defaultServeConfig()
	cfg.SFTPListen, cfg.SFTPUsers = "127.0.0.1:0", users
	e := startService(t, cfg)

	conn, err := ssh.Dial("tcp", e.svc.sftpAddr, &ssh.ClientConfig{
		User: "nordlys", Auth: []ssh.AuthMethod{ssh.Password("pw-nordlys")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	data, err := fs.ReadFile(examples.FS(), "changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	f, err := client.Create("/inbox/via-sftp.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var receipt []byte
	waitFor(t, 30*time.Second, func() bool {
		r, err := client.Open("/receipts/via-sftp.csv.receipt.csv")
		if err != nil {
			return false
		}
		defer r.Close()
		receipt, err = io.ReadAll(r)
		return err == nil
	})
	if !bytes.HasPrefix(receipt, []byte("\ufeffrow,reference,")) || strings.Count(string(receipt), "applied") != 6 {
		t.Errorf("receipt over SFTP:\n%s", receipt)
	}
}
