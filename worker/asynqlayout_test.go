package worker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TestAsynqLayout guards asynqlayout.go, the one file that touches Asynq's
// own Redis keys. It fails when go.mod moves Asynq to a release the layout
// was not checked against, and it checks the keys against a real Asynq
// client and inspector: a task's hash with its message under "msg", the
// queue set asynqmon lists, and the stub the repair removes.
func TestAsynqLayout(t *testing.T) {
	t.Parallel()
	goMod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, line := range strings.Split(string(goMod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/hibiken/asynq" {
			version = f[1]
		}
	}
	if version != asynqVersion {
		t.Fatalf("go.mod has Asynq %q, asynqlayout.go was checked against %s: check its keys against the new release, then update asynqVersion",
			version, asynqVersion)
	}

	ctx := context.Background()
	mr := miniredis.RunT(t)
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()

	if _, err := client.Enqueue(asynq.NewTask(TypeIngestFile, []byte(`{}`)), asynq.TaskID("t1"), asynq.Queue(QueueSmall)); err != nil {
		t.Fatal(err)
	}
	if !mr.Exists(asynqTaskKey(QueueSmall, "t1")) || mr.HGet(asynqTaskKey(QueueSmall, "t1"), "msg") == "" {
		t.Fatalf("Asynq keeps task t1 elsewhere than %s (with its message under msg); keys: %v", asynqTaskKey(QueueSmall, "t1"), mr.Keys())
	}
	if ok, _ := mr.SIsMember(asynqAllQueues, QueueSmall); !ok {
		t.Fatalf("Asynq lists its queues elsewhere than %s; keys: %v", asynqAllQueues, mr.Keys())
	}

	// A live task is not a stub: the repair leaves it alone.
	if dropped, err := dropTaskStub(ctx, rc, QueueSmall, "t1"); err != nil || dropped {
		t.Fatalf("dropTaskStub of a live task = %v, %v", dropped, err)
	}
	if _, err := insp.GetTaskInfo(QueueSmall, "t1"); err != nil {
		t.Fatalf("the live task is gone: %v", err)
	}

	// Redis loses its data; a running handler's progress write leaves a
	// stub that Asynq's own API can neither read nor delete.
	mr.FlushAll()
	mr.HSet(asynqTaskKey(QueueSmall, "t1"), "result", `{"rows_done":5}`)
	if _, err := insp.GetTaskInfo(QueueSmall, "t1"); err == nil {
		t.Fatal("Asynq reads the stub: the repair may no longer be needed")
	}
	if _, err := client.Enqueue(asynq.NewTask(TypeIngestFile, []byte(`{}`)), asynq.TaskID("t1"), asynq.Queue(QueueSmall)); err == nil {
		t.Fatal("the stub does not block the task id: the repair may no longer be needed")
	}
	if dropped, err := dropTaskStub(ctx, rc, QueueSmall, "t1"); err != nil || !dropped {
		t.Fatalf("dropTaskStub of the stub = %v, %v", dropped, err)
	}
	if _, err := client.Enqueue(asynq.NewTask(TypeIngestFile, []byte(`{}`)), asynq.TaskID("t1"), asynq.Queue(QueueSmall)); err != nil {
		t.Fatalf("enqueue after the repair: %v", err)
	}

	// After the flush the client, which registers a queue once per
	// process, does not list it again; registerQueues does.
	mr.FlushAll()
	if err := registerQueues(ctx, rc, QueueSmall, QueueLarge); err != nil {
		t.Fatal(err)
	}
	queues, err := insp.Queues()
	if err != nil || len(queues) != 2 {
		t.Fatalf("queues after registerQueues: %v, %v; want small and large", queues, err)
	}

	// The recovery counter is the service's own key, with an expiry.
	if n, err := countRecovery(ctx, rc, "t1", time.Hour); err != nil || n != 1 {
		t.Fatalf("countRecovery = %d, %v", n, err)
	}
	if ttl := mr.TTL("lessee:recovered:t1"); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("recovery counter TTL = %s, want up to an hour", ttl)
	}
}
