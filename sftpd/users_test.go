package sftpd

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParseUsers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newTestUser(t, dir, "a", orgA, "")
	b := newTestUser(t, dir, "b", orgB, "")
	hash := bcryptHash(t, "pw")

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		in := strings.Join([]string{
			"# comment",
			"",
			"alice:" + orgA + ":" + hash,
			"  alice : " + orgA + " : " + a.authorized + "  ",
			"alice:" + orgA + ":" + b.authorized,
			"bob.fleet@fjord:" + orgB + ":" + b.authorized,
		}, "\n")
		u, err := ParseUsers(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(u.Names(), ","); got != "alice,bob.fleet@fjord" {
			t.Errorf("names = %s", got)
		}
		if org, ok := u.OrgNr("bob.fleet@fjord"); !ok || org != orgB {
			t.Errorf("OrgNr(bob) = %q, %v", org, ok)
		}
		dummy := []byte(bcryptHash(t, "dummy"))
		if org, ok := u.checkPassword("alice", []byte("pw"), dummy); !ok || org != orgA {
			t.Errorf("alice's password refused")
		}
		if _, ok := u.checkPassword("alice", []byte("PW"), dummy); ok {
			t.Errorf("wrong password accepted")
		}
		if _, ok := u.checkPassword("bob.fleet@fjord", []byte("pw"), dummy); ok {
			t.Errorf("password accepted for a key-only user")
		}
		for _, k := range []ssh.PublicKey{a.signer.PublicKey(), b.signer.PublicKey()} {
			if org, ok := u.checkKey("alice", k); !ok || org != orgA {
				t.Errorf("alice's key %s refused", ssh.FingerprintSHA256(k))
			}
		}
		if _, ok := u.checkKey("bob.fleet@fjord", a.signer.PublicKey()); ok {
			t.Error("alice's key accepted for bob")
		}
		if _, ok := u.checkKey("nobody", a.signer.PublicKey()); ok {
			t.Error("key accepted for an unknown user")
		}
	})

	errs := []struct {
		name, in, want string
	}{
		{"ErrFields", "alice:" + orgA, "line 1: want user:orgnr"},
		{"ErrUserName", "al ice:" + orgA + ":" + hash, "line 1: user name"},
		{"ErrEmptyUserName", ":" + orgA + ":" + hash, "line 1: user name"},
		{"ErrOrgNrCheckDigit", "alice:912345603:" + hash, `line 1: user "alice": organisation number: check digit`},
		{"ErrOrgNrLength", "alice:12345:" + hash, `line 1: user "alice": organisation number`},
		{"ErrNoSecret", "alice:" + orgA + ":", "no password hash or public key"},
		{"ErrBadHash", "alice:" + orgA + ":$2a$10$short", "line 1: user \"alice\": malformed bcrypt hash"},
		{"ErrPlainPassword", "alice:" + orgA + ":hunter2", "neither a bcrypt hash"},
		{"ErrKeyOptions", "alice:" + orgA + `:from="10.0.0.0/8" ` + a.authorized, "options are not supported"},
		{"ErrTwoOrgNrs", "alice:" + orgA + ":" + hash + "\n\nalice:" + orgB + ":" + a.authorized, `line 3: user "alice" already has organisation number ` + orgA + " (line 1)"},
		{"ErrNoUsers", "# nobody yet\n", "no users defined"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseUsers(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			for _, secret := range []string{"hunter2", "$2a$10$short", "AAAA"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes a secret: %q", err)
				}
			}
		})
	}

	t.Run("ErrEveryBadLine", func(t *testing.T) {
		t.Parallel()
		in := "alice:1:" + hash + "\nbob:" + orgB + ":" + b.authorized + "\ncarol:" + orgA + ":nope\n"
		_, err := ParseUsers(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), "line 1:") || !strings.Contains(err.Error(), "line 3:") || strings.Contains(err.Error(), "line 2:") {
			t.Errorf("err = %v, want lines 1 and 3 reported", err)
		}
	})
}
