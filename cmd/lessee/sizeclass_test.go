package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/intake"
)

// TestSmallFileFinishesWhileLargeFileRuns uploads a large file and, while
// it is being processed, a small one: the small file's receipt must come
// back before the large file is done, because size classes have their own
// workers.
func TestSmallFileFinishesWhileLargeFileRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("processes a 250,000-row file")
	}
	cfg := defaultServeConfig()
	cfg.ChunkSize = 500
	e := startService(t, cfg)
	ctx := context.Background()

	var big bytes.Buffer
	big.WriteString("operation,registration_number,lessee_id,start_date,reference\n")
	for i := range 250_000 { // several seconds of work, so that the small file has time to overtake it
		fmt.Fprintf(&big, "add,ZZ%05d,12128822249,2026-01-01,big-%d\n", i, i)
	}
	const nordlys = "912345602"
	bigKey := "inbox/" + nordlys + "/big.csv"
	if err := e.objects.Put(ctx, bigKey, bytes.NewReader(big.Bytes()), int64(big.Len()), "text/csv"); err != nil {
		t.Fatal(err)
	}
	head, err := e.objects.Head(ctx, bigKey)
	if err != nil {
		t.Fatal(err)
	}
	bigJob := intake.JobID(cfg.Bucket, bigKey, intake.ObjectVersion(head.VersionID, head.ETag, head.LastModified))
	waitFor(t, time.Minute, func() bool {
		j, err := e.svc.store.Job(ctx, bigJob)
		return err == nil && j.RowsDone > 0
	})

	small, err := fs.ReadFile(examples.FS(), "changes/third-party.csv")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.objects.Put(ctx, "inbox/912345629/small.csv", bytes.NewReader(small), int64(len(small)), "text/csv"); err != nil {
		t.Fatal(err)
	}
	e.waitSummary(t, "912345629", "small.csv")
	took := time.Since(start)
	j, err := e.svc.store.Job(ctx, bigJob)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("small file's receipt after %s; the large file was at row %d of %d", took, j.RowsDone, j.RowsTotal)
	if j.State == lessee.JobCompleted {
		t.Fatalf("the large file finished before the small one (%d rows); the test proves nothing", j.RowsDone)
	}
	e.waitSummary(t, nordlys, "big.csv")
}
