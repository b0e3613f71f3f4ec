package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// poisonObjects is the bucket as the handler sees it, with two faults
// injected at their keys: one object is deleted just before it is read
// (by another client, between listing and reading), one object's reads
// (GET, and the copy a job pins it with) always fail.
type poisonObjects struct {
	objectStore
	vanishing, failing string
}

func (p poisonObjects) Download(ctx context.Context, key, ifMatch string, w io.Writer) (lessee.Object, error) {
	switch key {
	case p.vanishing:
		if err := p.objectStore.Delete(ctx, key); err != nil {
			return lessee.Object{}, err
		}
	case p.failing:
		return lessee.Object{}, errors.New("connection reset by peer")
	}
	return p.objectStore.Download(ctx, key, ifMatch, w)
}

func (p poisonObjects) CopyIfMatch(ctx context.Context, src, dst, etag string) (string, error) {
	switch src {
	case p.vanishing:
		if err := p.objectStore.Delete(ctx, src); err != nil {
			return "", err
		}
	case p.failing:
		return "", errors.New("connection reset by peer")
	}
	return p.objectStore.CopyIfMatch(ctx, src, dst, etag)
}

// TestPoisonFilesDelayNoOne: among ten good files from three companies,
// an empty object, an object deleted between listing and reading, an
// object whose GET always fails and, on MinIO, a key holding U+0001 (the
// embedded endpoint refuses to store it): every good file gets its receipt
// while the failing one is still being retried, and each bad one ends
// visibly (refused with a receipt, superseded, or given up with a
// receipt). It runs on the embedded endpoint and on a real MinIO server.
func TestPoisonFilesDelayNoOne(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("retries a failing file for several seconds")
	}
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		testPoisonFiles(t, setup(t, sqlstoretest.SQLite(t)), false)
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		testPoisonFiles(t, setupMinIO(t, sqlstoretest.SQLite(t)), true)
	})
}

func testPoisonFiles(t *testing.T, b *testBundle, xmlIllegalKey bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const nordlys, fjord, partner = "912345602", "912345610", "912345629"
	empty, vanishing, failing := "inbox/"+fjord+"/empty.csv", "inbox/"+fjord+"/vanishing.csv", "inbox/"+nordlys+"/failing.csv"
	b.handler.objects = poisonObjects{objectStore: b.handler.objects, vanishing: vanishing, failing: failing}

	redis := asynq.RedisClientOpt{Addr: miniredis.RunT(t).Addr()}
	client := asynq.NewClient(redis)
	defer client.Close()
	opt := DefaultOptions()
	opt.MaxRetry = 3 // backoff 1 s, 2 s, 4 s: the good files finish long before
	srvCfg := DefaultServerConfig()
	srvCfg.ShutdownTimeout = time.Second
	discard := slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = Serve(ctx, redis, b.handler, srvCfg, discard) }()
	scan := newScan(b.objects, NewQueue(client, opt, discard))
	go func() { defer wg.Done(); scan.Run(ctx, 50*time.Millisecond) }()
	defer wg.Wait()
	defer cancel()

	// The bad ones first, so that they are queued ahead of the good ones.
	if err := b.objects.Put(ctx, empty, strings.NewReader(""), 0, "text/csv"); err != nil {
		t.Fatal(err)
	}
	b.put(t, vanishing, "changes/all-outcomes.csv")
	b.put(t, failing, "changes/all-outcomes.csv")
	illegal := "inbox/" + partner + "/ctrl\x01name.csv"
	if xmlIllegalKey {
		b.put(t, illegal, "changes/third-party.csv")
	}
	var good []string
	for i := range 10 {
		sub := []string{nordlys, fjord, partner}[i%3]
		example := "changes/all-outcomes.csv"
		if sub == partner {
			example = "changes/third-party.csv"
		}
		name := fmt.Sprintf("good-%02d.csv", i)
		b.put(t, "inbox/"+sub+"/"+name, example)
		good = append(good, "receipts/"+sub+"/"+name+".summary.json")
	}

	start := time.Now()
	for _, key := range good {
		waitForKey(t, b.objects, key, time.Minute)
	}
	t.Logf("ten good receipts %s after the uploads", time.Since(start).Round(time.Millisecond))
	// Every good file is done while the failing one is still retrying.
	failingJob := jobOf(t, b, failing)
	if failingJob.State == lessee.JobCompleted || failingJob.State == lessee.JobRefused {
		t.Errorf("the failing file was finished (%s) before the good files; it should still be retrying", failingJob.State)
	}

	waitForKey(t, b.objects, "receipts/"+fjord+"/empty.csv.summary.json", time.Minute)
	if s := string(b.get(t, "receipts/"+fjord+"/empty.csv.summary.json")); !strings.Contains(s, `"code": "MISSING_HEADER"`) {
		t.Errorf("empty file's summary = %s", s)
	}
	waitForKey(t, b.objects, "receipts/"+nordlys+"/failing.csv.summary.json", time.Minute)
	if s := string(b.get(t, "receipts/"+nordlys+"/failing.csv.summary.json")); !strings.Contains(s, `"code": "PROCESSING_FAILED"`) {
		t.Errorf("failing file's summary = %s", s)
	}
	t.Logf("the failing file given up %s after the uploads", time.Since(start).Round(time.Millisecond))
	// The vanished file's job ends with a receipt of its own, in its
	// history folder, saying nothing was applied.
	if j := jobOf(t, b, vanishing); j.State != lessee.JobRefused || j.Code != lessee.CodeProcessingFailed || j.History == "" {
		t.Errorf("vanished file's job = %s %s %q, history %q; want refused, PROCESSING_FAILED, with a receipt", j.State, j.Code, j.Message, j.History)
	} else if s := string(b.get(t, objectkey.HistoryFor(j.Submitter, j.ID, j.Name, false).Summary)); !strings.Contains(s, `"code": "PROCESSING_FAILED"`) {
		t.Errorf("vanished file's summary = %s", s)
	}
	if xmlIllegalKey {
		if j := jobOf(t, b, illegal); j.State != lessee.JobRefused || j.Code != lessee.CodeInvalidKey {
			t.Errorf("U+0001 key's job = %s %s, want refused with INVALID_KEY", j.State, j.Code)
		}
		waitForGone(t, b.objects, illegal, time.Minute)
	}
}

// jobOf finds the job of the upload at key, waiting for it to be begun.
func jobOf(t *testing.T, b *testBundle, key string) lessee.Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		jobs, err := b.store.ListJobs(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Key == key {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job for %s", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
