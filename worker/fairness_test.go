package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestFloodDoesNotStarveOtherSubmitters uploads 1,000 small files from one
// submitter, then one file from another, and checks the bound the scan's
// per-submitter cap gives: at most MaxPerSubmitter queued flood files plus
// the ones already running finish before the other submitter's file.
func TestFloodDoesNotStarveOtherSubmitters(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("uploads 1,000 files")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := setup(t, sqlstoretest.SQLite(t))
	redis := asynq.RedisClientOpt{Addr: miniredis.RunT(t).Addr()}
	client := asynq.NewClient(redis)
	defer client.Close()
	opt := DefaultOptions()
	srvCfg := DefaultServerConfig()
	srvCfg.ShutdownTimeout = time.Second
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); Serve(ctx, redis, b.handler, srvCfg, slog.New(slog.DiscardHandler)) }()
	scanner := newScan(b.objects, NewQueue(client, opt, slog.New(slog.DiscardHandler)))
	go func() { defer wg.Done(); scanner.Run(ctx, 50*time.Millisecond) }()
	defer wg.Wait()
	defer cancel()

	const flooder, other = "912345602", "912345629"
	file := []byte("operation,registration_number,end_date,reference\nremove,EL10005,2026-02-01,x\n")
	for i := range 1000 {
		key := fmt.Sprintf("inbox/%s/flood-%04d.csv", flooder, i)
		if err := b.objects.Put(ctx, key, bytes.NewReader(file), int64(len(file)), "text/csv"); err != nil {
			t.Fatal(err)
		}
	}
	before := countSummaries(t, b.objects, flooder)
	b.put(t, "inbox/"+other+"/single.csv", "changes/third-party.csv")
	start := time.Now()
	waitForKey(t, b.objects, "receipts/"+other+"/single.csv.summary.json", time.Minute)
	took := time.Since(start)
	ahead := countSummaries(t, b.objects, flooder) - before

	// Ahead of the single file at most: the flood files queued (the cap),
	// those running, and one more scan's worth finishing as it runs.
	bound := intake.DefaultMaxPerSubmitter + srvCfg.SmallConcurrency + 1
	t.Logf("the other submitter's file finished %s after its upload; %d flood files finished meanwhile, %d of 1,000 were done before (bound %d)",
		took, ahead, before, bound)
	if before >= 990 {
		t.Fatal("the flood finished before the other file was uploaded; the test proves nothing")
	}
	if ahead > bound {
		t.Errorf("%d flood files finished while the other submitter's single file waited; the bound is %d", ahead, bound)
	}
}

func countSummaries(t *testing.T, objects *s3store.Client, submitter string) int {
	t.Helper()
	n := 0
	err := objects.List(context.Background(), "receipts/"+submitter+"/", func(o lessee.Object) error {
		// The latest summaries, not each job's own copy in its history.
		if strings.HasSuffix(o.Key, ".summary.json") && !strings.Contains(o.Key, "/history/") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitForKey(t *testing.T, objects *s3store.Client, key string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := objects.Head(context.Background(), key); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", key, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForGone waits until key no longer exists.
func waitForGone(t *testing.T, objects *s3store.Client, key string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := objects.Head(context.Background(), key)
		if lessee.ErrorCode(err) == lessee.ENOTFOUND {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after %s (last error %v)", key, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
