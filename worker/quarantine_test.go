package worker

import (
	"context"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestQuarantineTellsOnFinished: a quarantined upload is a finished job
// for the metrics (lessee_files_quarantined_total), told once even when
// its task runs again after the job was finished.
func TestQuarantineTellsOnFinished(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstoretest.SQLite(t))
	var told []lessee.Job
	b.handler.OnFinished = func(j lessee.Job) { told = append(told, j) }
	p := b.put(t, "inbox/123456789/fleet.csv", "changes/all-outcomes.csv")
	for range 2 { // the second as a retry would run it
		if err := b.handler.Process(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if len(told) != 1 {
		t.Fatalf("OnFinished told %d times, want once: %+v", len(told), told)
	}
	j := told[0]
	if j.State != lessee.JobRefused || j.Code != lessee.CodeInvalidKey || j.Key != p.Key || j.Finished.IsZero() {
		t.Errorf("told %+v, want a refused INVALID_KEY job for %s with its finish time", j, p.Key)
	}
}
