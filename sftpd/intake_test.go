package sftpd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/worker"
)

// TestUploadIsQueuedAtOnce: with an intake configured, a finished upload
// is queued as the service's intake queues it (the same job id the scan
// would give), without waiting for the next inbox scan.
func TestUploadIsQueuedAtOnce(t *testing.T) {
	t.Parallel()
	redis := asynq.RedisClientOpt{Addr: miniredis.RunT(t).Addr()}
	client := asynq.NewClient(redis)
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(redis)
	t.Cleanup(func() { insp.Close() })

	var in *intake.Intake
	b := setup(t, Config{Intake: lazyIntake{&in}})
	discard := slog.New(slog.DiscardHandler)
	in = intake.New(b.objects, worker.NewQueue(client, worker.DefaultOptions(), discard),
		intake.Config{Bucket: "lessee", MaxPerSubmitter: intake.DefaultMaxPerSubmitter}, discard)

	_, c := b.sftpClient(t, "alice", alicePassword)
	f, err := c.Create("/inbox/januar.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("operation;registration_number\nremove;EL10005\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	key := "inbox/" + orgA + "/januar.csv"
	// The server answers the client's Close once the file is stored and
	// queued.
	tasks, err := insp.ListPendingTasks(worker.QueueSmall)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("pending tasks: %d (%v), want 1", len(tasks), err)
	}
	var p worker.IngestPayload
	if err := json.Unmarshal(tasks[0].Payload, &p); err != nil || p.Key != key {
		t.Fatalf("task payload %s (%v), want key %s", tasks[0].Payload, err, key)
	}
	// The scan finds the same upload and queues nothing more.
	if n, err := in.Scan(t.Context()); err != nil || n != 0 {
		t.Fatalf("scan after the SFTP upload enqueued %d (%v), want 0", n, err)
	}
}

// lazyIntake lets the intake be built after the server it is given to,
// which the test bundle starts.
type lazyIntake struct{ in **intake.Intake }

func (l lazyIntake) Seen(ctx context.Context, key string) (intake.Sighting, error) {
	return (*l.in).Seen(ctx, key)
}

// TestUploadFolders: each upload folder stores under its own prefix of the
// user's organisation, where the worker takes it as changes, a snapshot or
// a dry run.
func TestUploadFolders(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	_, c := b.sftpClient(t, "alice", alicePassword)
	for _, folder := range []string{"inbox", "snapshot", "dryrun", "dryrun-snapshot"} {
		f, err := c.Create("/" + folder + "/fleet.csv")
		if err != nil {
			t.Fatalf("%s: %v", folder, err)
		}
		if _, err := f.Write([]byte("registration_number,lessee_id\nEL10005,\n")); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		key := folder + "/" + orgA + "/fleet.csv"
		if _, err := b.objects.Head(t.Context(), key); err != nil {
			t.Errorf("%s: %s not stored: %v", folder, key, err)
		}
		if pk := objectkey.Parse(key); pk.Verdict != objectkey.OK || string(pk.Source) != folder+"/" || pk.Submitter != orgA {
			t.Errorf("%s: key %s parses as %+v", folder, key, pk)
		}
		entries, err := c.ReadDir("/" + folder)
		if err != nil || len(entries) != 1 || entries[0].Name() != "fleet.csv" {
			t.Errorf("ls /%s = %v, %v", folder, entries, err)
		}
	}
	if _, err := c.Create("/exports/fleet.csv"); err == nil {
		t.Error("an upload to /exports was accepted")
	}
	// The fleet's export is read from /exports; another fleet's is not there.
	export := []byte("registration_number,vin,lessee_id,lessee_name,start_date,end_date\n")
	for _, org := range []string{orgA, orgB} {
		if err := b.objects.Put(t.Context(), objectkey.Export(org), bytes.NewReader(export), int64(len(export)), "text/csv"); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := c.ReadDir("/exports")
	if err != nil || len(entries) != 1 || entries[0].Name() != "fleet.csv" {
		t.Fatalf("ls /exports = %v, %v", entries, err)
	}
	f, err := c.Open("/exports/fleet.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, export) {
		t.Errorf("/exports/fleet.csv = %q, %v", got, err)
	}
}
