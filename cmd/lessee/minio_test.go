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

// TestMinIOWebhookEvents sets up MinIO's own event notification, as the
// README's mc commands do (a webhook target with an auth token and a queue
// folder, and a bucket notification for inbox/), and runs the service with
// the inbox scan all but off: the files are processed because MinIO's
// events arrive. A U+0001 key and an empty file among them hold back none
// of the good files' events.
func TestMinIOWebhookEvents(t *testing.T) {
	const secret = "minio-hook-secret"
	listen := freeAddr(t)
	m := s3storetest.StartMinIO(t,
		"MINIO_NOTIFY_WEBHOOK_ENABLE_lessee=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_lessee=http://"+listen+"/hooks/s3",
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_lessee="+secret,
		"MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_lessee="+t.TempDir())
	cfg := defaultServeConfig()
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey = m.Endpoint, m.AccessKey, m.SecretKey
	cfg.Listen, cfg.WebhookSecret = listen, secret
	cfg.ScanInterval = time.Hour // one scan at start, before any upload
	e, _ := launchService(t, cfg)
	m.NotifyWebhook(t, cfg.Bucket, "lessee", "inbox/")
	ctx := context.Background()

	const nordlys, fjord, partner = "912345602", "912345610", "912345629"
	e.upload(t, "inbox/"+nordlys+"/ctrl\x01name.csv", "changes/all-outcomes.csv")
	if err := e.objects.Put(ctx, "inbox/"+fjord+"/empty.csv", strings.NewReader(""), 0, "text/csv"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 6 {
		sub := []string{nordlys, fjord, partner}[i%3]
		name := fmt.Sprintf("event %02d æøå+%%.csv", i)
		example := "changes/all-outcomes.csv"
		if sub == partner {
			example = "changes/third-party.csv"
		}
		e.upload(t, "inbox/"+sub+"/"+name, example)
		names = append(names, sub+"/"+name)
	}
	for _, n := range names {
		sub, name, _ := strings.Cut(n, "/")
		if s := e.waitSummary(t, sub, name); s["status"] != "completed" {
			t.Errorf("%s: summary status %v", n, s["status"])
		}
	}
	if s := e.waitSummary(t, fjord, "empty.csv"); s["code"] != string(lessee.CodeMissingHeader) {
		t.Errorf("empty file: summary code %v, want MISSING_HEADER", s["code"])
	}
	if !strings.Contains(e.logs.String(), "s3 webhook: upload seen") {
		t.Error("no webhook delivery was logged: were the files found some other way?")
	}
}
