package worker

import (
	"bytes"
	"context"
	"io/fs"
	"sync/atomic"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// countingResults counts the reads of stored results.
type countingResults struct {
	Store
	reads atomic.Int64
}

func (c *countingResults) Results(ctx context.Context, jobID string, fn func(lessee.Result) error) error {
	c.reads.Add(1)
	return c.Store.Results(ctx, jobID, fn)
}

// TestEarlyReceiptIsTheStoredResults: an attempt that applies every row of
// a file writes its receipt as the chunks commit, without reading the
// stored results back, and the receipt it publishes is, byte for byte, the
// one the stored results give (as a resumed attempt writes it), for a
// change file, a dry run and an XLSX upload, over several chunks of two in
// flight.
func TestEarlyReceiptIsTheStoredResults(t *testing.T) {
	t.Parallel()
	data, err := fs.ReadFile(examples.FS(), "changes/all-outcomes.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		xlsx      bool
		dryRun    bool
	}{
		{name: "Changes", key: "inbox/912345602/early.csv"},
		{name: "DryRun", key: "dryrun/912345602/early.csv", dryRun: true},
		{name: "XLSX", key: "inbox/912345602/early.xlsx", xlsx: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
				ctx := context.Background()
				b := setup(t, store)
				b.handler.cfg.ChunkSize = 2
				counting := &countingResults{Store: b.handler.store}
				b.handler.store = counting
				var p IngestPayload
				if tc.xlsx {
					p = b.putWorkbook(t, tc.key, leietakere(t))
				} else {
					p = b.putBytes(t, tc.key, data)
				}
				if err := b.handler.Process(ctx, p); err != nil {
					t.Fatal(err)
				}
				if n := counting.reads.Load(); n != 0 {
					t.Errorf("the receipt read the stored results %d times; want it written as the chunks committed", n)
				}
				job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
				if err != nil {
					t.Fatal(err)
				}
				if job.RowsDone < 4 || job.RowsDone != job.RowsTotal {
					t.Fatalf("job = %+v, want every row of several chunks done", job)
				}
				name := job.Name + ".receipt.csv"
				if tc.dryRun {
					name = job.Name + ".dryrun.receipt.csv"
				}
				published := b.get(t, "receipts/912345602/"+name)

				var want bytes.Buffer
				w, err := receipt.NewCSVWriter(&want)
				if err != nil {
					t.Fatal(err)
				}
				if err := store.Results(ctx, job.ID, func(r lessee.Result) error {
					if tc.dryRun {
						r.ChangeID = ""
					}
					return w.Write(r)
				}); err != nil {
					t.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(published, want.Bytes()) {
					t.Errorf("published receipt\n%s\nwant (from the stored results)\n%s", published, want.Bytes())
				}
				if tc.xlsx {
					checkOriginalReceipt(t, b, job.Name)
				}
			})
		})
	}
}
