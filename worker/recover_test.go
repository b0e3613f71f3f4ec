package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// scanRig is the intake's scan over the handler bundle's bucket, queueing
// on a real Asynq client, with an inspector and a Redis client, all on
// miniredis.
type scanRig struct {
	*testBundle
	mr      *miniredis.Miniredis
	insp    *asynq.Inspector
	redis   *redis.Client
	queue   *Queue
	scanner *intake.Intake
}

func newScanRig(t *testing.T) *scanRig {
	t.Helper()
	mr := miniredis.RunT(t)
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	b := setup(t, sqlstoretest.SQLite(t))
	queue := NewQueue(client, DefaultOptions(), slog.New(slog.DiscardHandler))
	return &scanRig{testBundle: b, mr: mr, insp: insp, redis: rc, queue: queue,
		scanner: newScan(b.objects, queue)}
}

func TestScannerRecoversArchivedTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newScanRig(t)
	b, insp, scanner, queue := r.testBundle, r.insp, r.scanner, r.queue

	p := b.put(t, "inbox/912345602/a.csv", "changes/all-outcomes.csv")
	if n, err := scanner.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("first scan enqueued %d (%v)", n, err)
	}
	id := intake.JobID(p.Bucket, p.Key, p.Version)
	// As Asynq's recoverer does when every attempt's lease expired.
	if err := insp.ArchiveTask(QueueSmall, id); err != nil {
		t.Fatal(err)
	}
	if n, err := scanner.Scan(ctx); err != nil || n != 0 {
		t.Fatalf("without recovery the archived task blocks the file: enqueued %d (%v)", n, err)
	}
	queue.RecoverArchived(insp)
	if n, err := scanner.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan with recovery enqueued %d (%v), want 1", n, err)
	}
	info, err := insp.GetTaskInfo(QueueSmall, id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after recovery: %+v, %v; want pending", info, err)
	}
	// A pending task is left alone.
	if n, err := scanner.Scan(ctx); err != nil || n != 0 {
		t.Fatalf("scan of a pending task enqueued %d (%v), want 0", n, err)
	}
}

// TestScannerRepairsTaskLostWithRedis: Redis lost its data while a handler
// ran; the handler's progress write left a task hash without a message,
// which blocks the task id. The scan must clear it and enqueue again, and
// register the queues again for asynqmon.
func TestScannerRepairsTaskLostWithRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newScanRig(t)
	b, mr, insp, rc, scanner, queue := r.testBundle, r.mr, r.insp, r.redis, r.scanner, r.queue
	queue.RecoverArchived(insp)

	p := b.put(t, "inbox/912345602/a.csv", "changes/all-outcomes.csv")
	id := intake.JobID(p.Bucket, p.Key, p.Version)
	mr.FlushAll()
	mr.HSet("asynq:{small}:t:"+id, "result", `{"rows_done":5}`)
	// Without repair the stub blocks the file, and the scan says so: the
	// task cannot be read, which is not the same as "leave it".
	if n, err := scanner.Scan(ctx); err == nil || n != 0 {
		t.Fatalf("without repair the stub blocks the file: enqueued %d (%v), want 0 and the error", n, err)
	}
	queue.RepairWith(rc)
	if n, err := scanner.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan with repair enqueued %d (%v), want 1", n, err)
	}
	if info, err := insp.GetTaskInfo(QueueSmall, id); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after repair: %+v, %v; want pending", info, err)
	}
	queues, err := insp.Queues()
	if err != nil || len(queues) != 2 {
		t.Errorf("queues registered after the scan: %v, %v; want small and large", queues, err)
	}
}

// TestScannerGivesUpOnPoisonFile: a file whose task keeps being archived
// (its worker dies on every attempt) gets fresh retries twice, then a task
// that records it as failed.
func TestScannerGivesUpOnPoisonFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newScanRig(t)
	b, insp, rc, scanner, queue := r.testBundle, r.insp, r.redis, r.scanner, r.queue
	queue.RecoverArchived(insp)
	queue.RepairWith(rc)

	p := b.put(t, "inbox/912345602/poison.csv", "changes/all-outcomes.csv")
	id := intake.JobID(p.Bucket, p.Key, p.Version)
	if _, err := scanner.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= maxRecoveries+1; round++ {
		if err := insp.ArchiveTask(QueueSmall, id); err != nil {
			t.Fatal(err)
		}
		if n, err := scanner.Scan(ctx); err != nil || n != 1 {
			t.Fatalf("round %d: enqueued %d (%v)", round, n, err)
		}
		info, err := insp.GetTaskInfo(QueueSmall, id)
		if err != nil {
			t.Fatal(err)
		}
		var got IngestPayload
		if err := json.Unmarshal(info.Payload, &got); err != nil {
			t.Fatal(err)
		}
		if want := round > maxRecoveries; got.GiveUp != want {
			t.Fatalf("round %d: GiveUp = %v, want %v", round, got.GiveUp, want)
		}
		if got.GiveUp {
			task := asynq.NewTask(TypeIngestFile, info.Payload)
			if err := b.handler.ProcessTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
	}
	summary := string(b.get(t, "receipts/912345602/poison.csv.summary.json"))
	if !strings.Contains(summary, `"code": "PROCESSING_FAILED"`) {
		t.Errorf("summary = %s", summary)
	}
	if _, err := b.objects.Head(ctx, "failed/912345602/poison.csv"); err != nil {
		t.Errorf("poison file not moved to failed/: %v", err)
	}
}

func TestRemoveSpoolFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"lessee-upload-1", "lessee-receipt-2", "lessee-receipt-3.xlsx", "sftp-upload-4", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveSpoolFiles(dir); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 {
		t.Errorf("left %v, want only sftp-upload-4 and keep.txt", left)
	}
}
