package receipt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

// memObjects records object writes and deletes in order; it stands in for
// the bucket, whose behaviour here is only "store these bytes".
type memObjects struct {
	mu      sync.Mutex
	objects map[string][]byte
	log     []string // "put KEY" and "delete KEY", in order
	failPut string   // a key whose Put fails
}

func (m *memObjects) Put(_ context.Context, key string, body io.ReadSeeker, size int64, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if key == m.failPut {
		return errors.New("connection reset")
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return errors.New("size does not match the body")
	}
	m.objects[key] = b
	m.log = append(m.log, "put "+key)
	return nil
}

func (m *memObjects) Copy(_ context.Context, src, dst string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[src]
	if !ok {
		return lessee.Errorf(lessee.ENOTFOUND, "no object %s", src)
	}
	m.objects[dst] = append([]byte(nil), b...)
	m.log = append(m.log, "copy "+src+" "+dst)
	return nil
}

func (m *memObjects) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = append(m.log, "delete "+key)
	if _, ok := m.objects[key]; !ok {
		return lessee.Errorf(lessee.ENOTFOUND, "no object %s", key)
	}
	delete(m.objects, key)
	return nil
}

func TestPublish(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	job := lessee.Job{ID: "j1", Key: "inbox/912345602/a.csv", Submitter: "912345602", Name: "a.csv",
		Format: lessee.FormatCSV, State: lessee.JobCompleted, Applied: 1, Started: now.Add(-time.Second)}
	rows := func(w *Lines) error {
		return w.Write(lessee.Result{Index: 0, Line: 2, Status: lessee.StatusApplied, Message: "lessee added", ChangeID: "j1-0"})
	}

	t.Run("OKReceiptBeforeSummary", func(t *testing.T) {
		t.Parallel()
		m := &memObjects{objects: map[string][]byte{"receipts/912345602/a.csv.summary.json": []byte(`{"job_id":"old"}`)}}
		if err := NewPublisher(m, t.TempDir(), func() time.Time { return now }).Publish(context.Background(), job, nil, rows); err != nil {
			t.Fatal(err)
		}
		// Written once, in the job's history folder, summary last; then
		// copied to the latest keys, the old summary deleted first and the
		// new one copied last.
		want := []string{
			"delete receipts/912345602/history/j1/a.csv.summary.json",
			"put receipts/912345602/history/j1/a.csv.receipt.csv",
			"put receipts/912345602/history/j1/a.csv.summary.json",
			"delete receipts/912345602/a.csv.summary.json",
			"copy receipts/912345602/history/j1/a.csv.receipt.csv receipts/912345602/a.csv.receipt.csv",
			"copy receipts/912345602/history/j1/a.csv.summary.json receipts/912345602/a.csv.summary.json",
		}
		if strings.Join(m.log, "\n") != strings.Join(want, "\n") {
			t.Fatalf("writes:\n%s\nwant:\n%s", strings.Join(m.log, "\n"), strings.Join(want, "\n"))
		}
		if r := m.objects["receipts/912345602/a.csv.receipt.csv"]; !bytes.Contains(r, []byte("2,,,,,,applied,,lessee added,j1-0")) {
			t.Errorf("receipt = %q", r)
		}
		s := string(m.objects["receipts/912345602/a.csv.summary.json"])
		if !strings.Contains(s, `"job_id": "j1"`) || !strings.Contains(s, `"finished": "2026-03-01T12:00:00Z"`) ||
			!strings.Contains(s, `"history": {
    "receipt": "receipts/912345602/history/j1/a.csv.receipt.csv",
    "summary": "receipts/912345602/history/j1/a.csv.summary.json"
  }`) {
			t.Errorf("summary = %s", s)
		}
		if h := string(m.objects["receipts/912345602/history/j1/a.csv.summary.json"]); h != s {
			t.Errorf("history summary differs from the latest:\n%s\n%s", h, s)
		}
	})
	t.Run("OKXLSXUploadGetsXLSXReceipt", func(t *testing.T) {
		t.Parallel()
		m := &memObjects{objects: map[string][]byte{}}
		x := job
		x.Format = lessee.FormatXLSX
		if err := NewPublisher(m, t.TempDir(), func() time.Time { return now }).Publish(context.Background(), x, nil, rows); err != nil {
			t.Fatal(err)
		}
		if len(m.log) != 8 || m.log[2] != "put receipts/912345602/history/j1/a.csv.receipt.xlsx" ||
			m.log[6] != "copy receipts/912345602/history/j1/a.csv.receipt.xlsx receipts/912345602/a.csv.receipt.xlsx" ||
			m.log[7] != "copy receipts/912345602/history/j1/a.csv.summary.json receipts/912345602/a.csv.summary.json" {
			t.Fatalf("writes: %q", m.log)
		}
		if s := string(m.objects["receipts/912345602/a.csv.summary.json"]); !strings.Contains(s, `"receipt_xlsx": "receipts/912345602/a.csv.receipt.xlsx"`) ||
			!strings.Contains(s, `"receipt_xlsx": "receipts/912345602/history/j1/a.csv.receipt.xlsx"`) {
			t.Errorf("summary = %s", s)
		}
	})
	t.Run("ErrReceiptPutLeavesNoSummary", func(t *testing.T) {
		t.Parallel()
		m := &memObjects{objects: map[string][]byte{"receipts/912345602/a.csv.summary.json": []byte(`{"job_id":"old"}`)},
			failPut: "receipts/912345602/history/j1/a.csv.receipt.csv"}
		if err := NewPublisher(m, t.TempDir(), func() time.Time { return now }).Publish(context.Background(), job, nil, rows); err == nil {
			t.Fatal("no error")
		}
		if _, ok := m.objects["receipts/912345602/history/j1/a.csv.summary.json"]; ok {
			t.Error("a summary is present although its receipt was not written")
		}
		// The latest keys still show the earlier job's receipt, whole.
		if s := string(m.objects["receipts/912345602/a.csv.summary.json"]); s != `{"job_id":"old"}` {
			t.Errorf("latest summary = %s", s)
		}
	})
	t.Run("ErrLinesFail", func(t *testing.T) {
		t.Parallel()
		m := &memObjects{objects: map[string][]byte{}}
		boom := errors.New("results unavailable")
		err := NewPublisher(m, t.TempDir(), func() time.Time { return now }).Publish(context.Background(), job, nil,
			func(*Lines) error { return boom })
		if !errors.Is(err, boom) || len(m.objects) != 0 {
			t.Fatalf("err = %v, objects %v; want the error and nothing written", err, m.objects)
		}
	})
}
