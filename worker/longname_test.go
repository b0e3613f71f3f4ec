package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestLongestNameGetsItsReceipt: an upload with the longest name the
// inbox accepts gets its receipt and summary and is archived on the
// embedded endpoint, whose files were limited to keys of about 220 bytes,
// and whose receipt keys' last segments stay within 255 bytes.
func TestLongestNameGetsItsReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, sqlstoretest.SQLite(t))
	name := strings.Repeat("æ", (objectkey.MaxNameBytes-len(".csv"))/2) + ".csv"
	if objectkey.NameFault(name) != "" || len(name) < objectkey.MaxNameBytes-1 {
		t.Fatalf("test name of %d bytes: %s", len(name), objectkey.NameFault(name))
	}
	p := b.put(t, objectkey.InboxKey("912345602", name), "changes/all-outcomes.csv")
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}
	summary := string(b.get(t, objectkey.Summary("912345602", name)))
	if !strings.Contains(summary, `"status": "completed"`) {
		t.Fatalf("summary = %s", summary)
	}
	if rows := receiptRows(t, b.get(t, objectkey.ReceiptCSV("912345602", name))); len(rows) != 22 {
		t.Errorf("receipt has %d rows, want 22", len(rows))
	}
	if _, err := b.objects.Head(ctx, objectkey.Archived("912345602", name)); err != nil {
		t.Errorf("not archived: %v", err)
	}
}
