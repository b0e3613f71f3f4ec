package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/web"
	"github.com/fleetreg/lessee/worker"
)

// TestWebhookEndToEnd runs the web server over a running service: a MinIO
// event for an upload with æøå and spaces in its name races the inbox scan,
// the real worker processes the file once, and the job API and metrics
// report it.
func TestWebhookEndToEnd(t *testing.T) {
	const secret, nordlys, name = "e2e-secret", "912345602", "Bilær øst år.csv"
	key := "inbox/" + nordlys + "/" + name
	e := startService(t, serveConfig{})

	queue := asynq.NewClient(e.svc.redisOpt)
	t.Cleanup(func() { queue.Close() })
	insp := asynq.NewInspector(e.svc.redisOpt)
	t.Cleanup(func() { insp.Close() })
	reg := web.NewRegistry(insp)
	metrics := web.NewMetrics(reg)
	taskOpt := worker.DefaultOptions()
	taskOpt.SmallFileBytes = e.svc.cfg.SmallFile
	uploads := intake.New(e.svc.objects, worker.NewQueue(queue, taskOpt, e.svc.log),
		intake.Config{Bucket: e.svc.cfg.Bucket, MaxPerSubmitter: intake.DefaultMaxPerSubmitter}, e.svc.log)
	srv := web.New(web.Config{Bucket: e.svc.cfg.Bucket, WebhookSecret: secret},
		e.svc.store, e.svc.objects, uploads, web.MetricsHandler(reg), e.svc.log)
	mux := http.NewServeMux()
	srv.Routes(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	event, err := os.ReadFile("../../web/testdata/minio-multipart-aeoeaa.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func() {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, ts.URL+"/hooks/s3", bytes.NewReader(event))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("webhook status %d", res.StatusCode)
		}
	}

	e.upload(t, key, "changes/all-outcomes.csv")
	post()
	summary := e.waitSummary(t, nordlys, name)
	if summary["status"] != "completed" {
		t.Fatalf("summary status %v", summary["status"])
	}
	post() // its task exists (running or done) and the source may be archived: nothing to enqueue

	// The receipts are published before the job is marked finished (a
	// job is finished only once they are): wait for that too.
	var mine []web.JobView
	waitFor(t, 30*time.Second, func() bool {
		var jobs []web.JobView
		if err := json.Unmarshal(webGet(t, ts.URL+"/api/jobs"), &jobs); err != nil {
			t.Fatal(err)
		}
		mine = mine[:0]
		for _, j := range jobs {
			if j.Key == key {
				mine = append(mine, j)
			}
		}
		return len(mine) != 1 || mine[0].Finished != nil
	})
	if len(mine) != 1 {
		t.Fatalf("%d jobs for %s, want 1", len(mine), key)
	}
	j := mine[0]
	if j.State != "completed" || j.Progress != 1 || j.RowsDone != j.RowsTotal ||
		float64(j.Applied) != summary["applied"] || float64(j.Unchanged) != summary["unchanged"] || float64(j.Rejected) != summary["rejected"] {
		t.Errorf("job %+v does not match summary %v", j, summary)
	}
	// The job's own receipt, in its history folder.
	if j.Receipt != objectkey.HistoryFor(nordlys, j.ID, name, false).CSV {
		t.Errorf("receipt key %q", j.Receipt)
	}

	// The summary is published before the task ends (the job is finished
	// and the source archived after it), so wait for asynq to record it.
	completedTasks := func() int {
		tasks := 0
		for _, q := range []string{worker.QueueSmall, worker.QueueLarge} {
			done, err := insp.ListCompletedTasks(q)
			if err != nil && !strings.Contains(err.Error(), "not found") {
				t.Fatal(err)
			}
			for _, task := range done {
				var p worker.IngestPayload
				if json.Unmarshal(task.Payload, &p) == nil && p.Key == key {
					tasks++
				}
			}
		}
		return tasks
	}
	tasks := completedTasks()
	for deadline := time.Now().Add(10 * time.Second); tasks == 0 && time.Now().Before(deadline); tasks = completedTasks() {
		time.Sleep(50 * time.Millisecond)
	}
	if tasks != 1 {
		t.Errorf("%d completed tasks for %s, want 1", tasks, key)
	}

	stored, err := e.svc.store.Job(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	metrics.ObserveJob(stored)
	body := string(webGet(t, ts.URL+"/metrics"))
	for _, want := range []string{`lessee_files_total{status="completed"} 1`, `asynq_tasks_processed_total{queue="small"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func webGet(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return b
}
