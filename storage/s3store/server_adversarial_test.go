package s3store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestServerKeepsObjectsInsideDataDir puts keys that climb out of the
// bucket folder with ".." segments: whatever the embedded endpoint does
// with them, no file appears outside its data directory.
func TestServerKeepsObjectsInsideDataDir(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	_, url := startServer(t, dir)
	c := newTestClient(t, url)
	for _, key := range []string{
		"../../outside.txt",
		"../../../outside.txt",
		"inbox/../../../outside.txt",
		"inbox/../../../../../../../../../../" + filepath.ToSlash(parent)[1:] + "/outside.txt",
	} {
		// A refusal is fine; only where a stored file lands matters.
		_ = c.Put(context.Background(), key, bytes.NewReader([]byte("x")), 1, "text/plain")
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "data" {
			t.Errorf("a key wrote %s outside the data directory", filepath.Join(parent, e.Name()))
		}
	}
}

// TestServerRefusesUncleanKeys is what the embedded endpoint should do with
// keys that are not clean paths: refuse them. Today it stores them at the
// cleaned path while gofakes3 keeps their metadata under the literal key,
// so (1) "inbox/912345602/../../receipts/912345610/r.csv" writes into
// another company's receipts, "../other/x" into another bucket folder; and
// (2) afterwards ListObjectsV2 answers 500 for the whole bucket, so one
// such upload stops the inbox scan for every company. Keys holding
// characters XML 1.0 cannot carry are listed under another name (U+FFFD),
// so they are never processed. Gap G1 and G2 of docs/threat-model.md.
func TestServerRefusesUncleanKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := startServer(t, t.TempDir())
	c := newTestClient(t, url)
	put(t, c, "inbox/912345610/x.csv", []byte("competitor"))
	put(t, c, "receipts/912345610/r.csv", []byte("competitor receipt"))
	for _, key := range []string{
		"inbox/912345602/../912345610/x.csv",
		"inbox/912345602/../../receipts/912345610/r.csv",
		"inbox/912345602/./x.csv",
		"inbox//912345602/x.csv",
		"/inbox/912345602/x.csv",
		"../other/x",
		"inbox/912345602/x\x01.csv",
	} {
		if err := c.Put(ctx, key, bytes.NewReader([]byte("attacker")), 8, "text/csv"); err == nil {
			t.Errorf("Put(%q) accepted", key)
		}
	}
	listed := listAll(t, c, "") // fails the test if listing fails
	for key, o := range listed {
		got, _ := download(t, c, key)
		if o.Key != key || (key == "inbox/912345610/x.csv" && string(got) != "competitor") ||
			(key == "receipts/912345610/r.csv" && string(got) != "competitor receipt") {
			t.Errorf("object %q: %q", key, got)
		}
	}
}
