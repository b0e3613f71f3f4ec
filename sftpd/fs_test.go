package sftpd

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fleetreg/lessee/objectkey"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		kind kind
		name string
		err  bool
	}{
		{in: "/", kind: kindRoot},
		{in: "", kind: kindRoot},
		{in: ".", kind: kindRoot},
		{in: "/..", kind: kindRoot},
		{in: "/receipts/../..", kind: kindRoot},
		{in: "../../../etc", err: true},
		{in: "/inbox", kind: kindInbox},
		{in: "inbox/", kind: kindInbox},
		{in: "/inbox/./", kind: kindInbox},
		{in: "/receipts", kind: kindReceipts},
		{in: "/inbox/a.csv", kind: kindInboxFile, name: "a.csv"},
		{in: "/inbox//a.csv", kind: kindInboxFile, name: "a.csv"},
		{in: "/receipts/../inbox/a.csv", kind: kindInboxFile, name: "a.csv"},
		{in: "/receipts/a.csv.receipt.csv", kind: kindReceiptFile, name: "a.csv.receipt.csv"},
		{in: "/receipts/" + orgB + "/x", err: true},
		{in: "../receipts/" + orgB + "/x", err: true},
		{in: "/inbox/sub/a.csv", err: true},
		{in: "/etc/passwd", err: true},
		{in: "/Inbox", err: true},
		{in: "/inbox/a\x00b", err: true},
		{in: "/snapshot", kind: kindInbox},
		{in: "/dryrun-snapshot/fleet.csv", kind: kindInboxFile, name: "fleet.csv"},
		{in: "/dryrun/../snapshot/f.csv", kind: kindInboxFile, name: "f.csv"},
		{in: "/snapshot/sub/f.csv", err: true},
		{in: "/exports", kind: kindReceipts},
		{in: "/exports/fleet.csv", kind: kindReceiptFile, name: "fleet.csv"},
		{in: "/archive/x", err: true},
		{in: `/inbox\..\receipts`, err: true},
	}
	for _, tc := range tests {
		got, err := resolve(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("resolve(%q) = %+v, want an error", tc.in, got)
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("resolve(%q): err = %v, want not-exist", tc.in, err)
			}
			continue
		}
		if err != nil || got.kind != tc.kind || got.name != tc.name {
			t.Errorf("resolve(%q) = %+v, %v; want kind %d name %q", tc.in, got, err, tc.kind, tc.name)
		}
	}
}

// FuzzResolve checks that no path escapes the virtual tree: every file
// resolves to one name without separators, so the bucket key is always
// directly under the user's own prefix.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "/inbox/a.csv", "/snapshot/f.csv", "/dryrun-snapshot/../dryrun/x", "/receipts/../../x", "../receipts/912345610/x", "/inbox/..", "//inbox//a", "/inbox/\x00", `\inbox\a`} {
		f.Add(s)
	}
	sess := &session{orgnr: orgA}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := resolve(p)
		if err != nil {
			return
		}
		switch got.kind {
		case kindRoot, kindInbox, kindReceipts:
			if got.name != "" {
				t.Fatalf("folder %q has a name %q", p, got.name)
			}
			return
		case kindInboxFile, kindReceiptFile:
		default:
			t.Fatalf("resolve(%q): unknown kind %d", p, got.kind)
		}
		if got.name == "" || got.name == "." || got.name == ".." || strings.ContainsAny(got.name, "/\x00") {
			t.Fatalf("resolve(%q): bad name %q", p, got.name)
		}
		key, folder := sess.uploadKey(got), string(got.source)
		if got.kind == kindReceiptFile {
			key, folder = sess.readDir(got)+got.name, got.read+"/"
		} else if _, ok := objectkey.SourceOfKey(key); !ok {
			t.Fatalf("resolve(%q): upload key %q is under no upload prefix", p, key)
		}
		if rest, ok := strings.CutPrefix(key, folder+orgA+"/"); !ok || rest != got.name {
			t.Fatalf("resolve(%q): key %q is not directly under the user's prefix", p, key)
		}
		if got.kind == kindInboxFile {
			if pk := objectkey.Parse(key); pk.Verdict == objectkey.OK && pk.Submitter != orgA {
				t.Fatalf("resolve(%q): key %q parses as submitter %s", p, key, pk.Submitter)
			}
		}
	})
}
