package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/s3store/s3storetest"
)

// TestMinIOBadKeyStallsNoOne runs the whole service against a real MinIO
// server: among good files from three companies, a key holding U+0001
// (which MinIO stores and writes into listings as XML cannot carry it) and
// an empty object. Every good file gets its receipt; the bad key is refused
// with INVALID_KEY and moved to failed/, the empty file refused with
// MISSING_HEADER. Before listings asked for URL-encoded keys, the U+0001
// key made every inbox scan fail.
func TestMinIOBadKeyStallsNoOne(t *testing.T) {
	m := s3storetest.StartMinIO(t)
	cfg := defaultServeConfig()
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey = m.Endpoint, m.AccessKey, m.SecretKey
	cfg.ScanInterval = 100 * time.Millisecond
	e, _ := launchService(t, cfg)
	ctx := context.Background()

	const nordlys, fjord, partner = "912345602", "912345610", "912345629"
	bad := "inbox/" + nordlys + "/ctrl\x01name.csv"
	e.upload(t, bad, "changes/all-outcomes.csv")
	if err := e.objects.Put(ctx, "inbox/"+fjord+"/empty.csv", strings.NewReader(""), 0, "text/csv"); err != nil {
		t.Fatal(err)
	}
	type upload struct{ submitter, name string }
	var good []upload
	for i := range 6 {
		u := upload{[]string{nordlys, fjord, partner}[i%3], fmt.Sprintf("good %02d æøå+.csv", i)}
		example := "changes/all-outcomes.csv"
		if u.submitter == partner {
			example = "changes/third-party.csv"
		}
		e.upload(t, "inbox/"+u.submitter+"/"+u.name, example)
		good = append(good, u)
	}
	for _, u := range good {
		if s := e.waitSummary(t, u.submitter, u.name); s["status"] != "completed" {
			t.Errorf("%s/%s: summary status %v", u.submitter, u.name, s["status"])
		}
	}
	if s := e.waitSummary(t, fjord, "empty.csv"); s["code"] != string(lessee.CodeMissingHeader) {
		t.Errorf("empty file: summary code %v, want MISSING_HEADER", s["code"])
	}
	// The bad key's job is refused with INVALID_KEY, under a safe name.
	var refused bool
	waitFor(t, 30*time.Second, func() bool {
		jobs, err := e.svc.store.ListJobs(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Key == bad && j.State == lessee.JobRefused {
				refused = j.Code == lessee.CodeInvalidKey
				return true
			}
		}
		return false
	})
	if !refused {
		t.Error("the U+0001 key was not refused with INVALID_KEY")
	}
	waitFor(t, 30*time.Second, func() bool {
		_, err := e.objects.Head(ctx, bad)
		return lessee.ErrorCode(err) == lessee.ENOTFOUND
	})
}
