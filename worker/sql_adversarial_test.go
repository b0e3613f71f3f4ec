package worker

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/sqlstore"
)

// TestHandlerSQLInjectionValues sends SQL-looking values through the whole
// path (object key, header, every column) with the real handler and a real
// SQLite store. Values that are not valid identifiers are rejected with the
// code of their field; free text is stored verbatim; afterwards every
// table is still there and the registry holds what it held plus the one
// valid row.
func TestHandlerSQLInjectionValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "lessee.db")
	store, err := sqlstore.Open(ctx, "sqlite:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b := setup(t, store) // imports the demo registry
	db, err := sqlx.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tables := func() (names []string, vehicles, enterprises, delegations int) {
		t.Helper()
		if err := db.SelectContext(ctx, &names, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`); err != nil {
			t.Fatal(err)
		}
		for q, n := range map[string]*int{
			`SELECT COUNT(*) FROM vehicles`: &vehicles, `SELECT COUNT(*) FROM enterprises`: &enterprises,
			`SELECT COUNT(*) FROM delegations`: &delegations,
		} {
			if err := db.GetContext(ctx, n, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return names, vehicles, enterprises, delegations
	}
	tablesBefore, vehiclesBefore, enterprisesBefore, delegationsBefore := tables()

	const (
		dropVehicles = `'; DROP TABLE vehicles; --`
		orTrue       = `EL1' OR '1'='1`
		nameInject   = `Robert'); DROP TABLE audit_log;--`
		refInject    = `x'); DELETE FROM vehicles; --`
	)
	// Values holding the delimiter or quotes are quoted as CSV requires.
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	file := strings.Join([]string{
		"operation,registration_number,vin,lessee_id,lessee_name,start_date,end_date,on_behalf_of,reference," + q(`x'); DROP TABLE jobs; --`),
		"add," + q(dropVehicles) + ",,12128822249,,2026-01-01,,,r1,",
		"add,," + q(orTrue) + ",12128822249,,2026-01-01,,,r2,",
		"add,EL10001,,12128822249' OR '1'='1,,2026-01-01,,,r3,",
		"add,EL10001,,12128822249,,2026-01-01' OR '1'='1,,,r4,",
		"add,EL10001,,12128822249,,2026-01-01,,912345610' OR '1'='1,r5,",
		"remove," + q(orTrue) + ",,,,,2026-02-01,,r6,",
		q(`'; DROP TABLE jobs; --`) + ",EL10001,,12128822249,,2026-01-01,,,r7,",
		"remove,EL10004,,,,,2026-02-01' OR '1'='1,,r8,",
		"add,EL10001,,12128822249," + q(nameInject) + ",2026-01-01,,," + q(refInject) + ",",
	}, "\n") + "\n"
	key := "inbox/912345602/x'; DROP TABLE jobs; --.csv"
	if err := b.objects.Put(ctx, key, strings.NewReader(file), int64(len(file)), "text/csv"); err != nil {
		t.Fatal(err)
	}
	o, err := b.objects.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	p := IngestPayload{Upload: lessee.Upload{Bucket: testBucket, Key: key, ETag: o.ETag, Size: o.Size, Version: intake.ObjectVersion(o.VersionID, o.ETag, o.LastModified)}}
	if err := b.handler.Process(ctx, p); err != nil {
		t.Fatal(err)
	}

	rows := receiptRows(t, b.get(t, "receipts/912345602/x'; DROP TABLE jobs; --.csv.receipt.csv"))
	want := []struct{ ref, status, code string }{
		{"r1", "rejected", string(lessee.CodeInvalidRegNumber)},
		{"r2", "rejected", string(lessee.CodeInvalidVIN)},
		{"r3", "rejected", string(lessee.CodeInvalidLesseeID)},
		{"r4", "rejected", string(lessee.CodeInvalidDate)},
		{"r5", "rejected", string(lessee.CodeInvalidOnBehalfOf)},
		{"r6", "rejected", string(lessee.CodeInvalidRegNumber)},
		{"r7", "rejected", string(lessee.CodeInvalidOperation)},
		{"r8", "rejected", string(lessee.CodeInvalidDate)},
		{refInject, "applied", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("receipt has %d rows, want %d: %q", len(rows), len(want), rows)
	}
	for i, w := range want {
		if r := rows[i]; r[1] != w.ref || r[6] != w.status || r[7] != w.code {
			t.Errorf("row %s: reference %q, %s %s (%s); want %q, %s %s", r[0], r[1], r[6], r[7], r[8], w.ref, w.status, w.code)
		}
	}

	tablesAfter, vehiclesAfter, enterprisesAfter, delegationsAfter := tables()
	if !slices.Equal(tablesAfter, tablesBefore) {
		t.Errorf("tables %q after, %q before", tablesAfter, tablesBefore)
	}
	if vehiclesAfter != vehiclesBefore || enterprisesAfter != enterprisesBefore || delegationsAfter != delegationsBefore {
		t.Errorf("registry rows changed: vehicles %d->%d, enterprises %d->%d, delegations %d->%d",
			vehiclesBefore, vehiclesAfter, enterprisesBefore, enterprisesAfter, delegationsBefore, delegationsAfter)
	}
	audit, err := store.Audit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].LesseeName != nameInject || audit[0].FileKey != key {
		t.Errorf("audit = %+v; want the one applied row, name and file key stored verbatim", audit)
	}
	job, err := store.Job(ctx, intake.JobID(p.Bucket, p.Key, p.Version))
	if err != nil {
		t.Fatal(err)
	}
	if job.Key != key || job.State != lessee.JobCompleted || job.Applied != 1 || job.Rejected != 8 {
		t.Errorf("job = %+v", job)
	}
	if !slices.ContainsFunc(job.IgnoredColumns, func(c string) bool { return strings.Contains(c, "DROP TABLE jobs") }) {
		t.Errorf("ignored columns %q; want the SQL-looking header kept as text", job.IgnoredColumns)
	}
	if jobs, err := store.ListJobs(ctx, 10); err != nil || len(jobs) != 1 {
		t.Errorf("ListJobs = %d jobs, %v", len(jobs), err)
	}
}
