package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

const (
	owner = "912345602" // a fleet owner of the demo registry
	other = "912345610" // another fleet owner
)

// The day every test exports on: 23:30 UTC on 14 March is already 15 March
// in Oslo (UTC+1), so the day must come from the Oslo clock.
var (
	testNow = time.Date(2026, 3, 14, 23, 30, 0, 0, time.UTC)
	testDay = lessee.Date("2026-03-15")
)

// objects returns a client of a fresh embedded S3 endpoint.
func objects(t testing.TB) *s3store.Client {
	t.Helper()
	srv, err := s3store.NewServer(s3store.ServerConfig{Dir: t.TempDir(), Bucket: "lessee", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := s3store.NewClient(context.Background(), s3store.Config{Endpoint: hs.URL, AccessKey: "k", SecretKey: "s", Bucket: "lessee"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// importVehicles imports the demo registry's enterprises and terms with
// vehicles.csv lines (without the header).
func importVehicles(t *testing.T, store *sqlstore.Store, lines ...string) {
	t.Helper()
	if err := tryImportVehicles(t, store, lines...); err != nil {
		t.Fatal(err)
	}
}

// tryImportVehicles imports the demo registry with lines as vehicles.csv.
func tryImportVehicles(t *testing.T, store *sqlstore.Store, lines ...string) error {
	t.Helper()
	dir := t.TempDir()
	if err := examples.WriteRegistry(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{sqlstore.FileDelegations} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	body := "registration_number,vin,owner_orgnr,owner_since,lessee_id,lessee_start,lessee_end\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, sqlstore.FileVehicles), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Import(context.Background(), dir, sqlstore.ImportOptions{})
	return err
}

func download(t *testing.T, c *s3store.Client, key string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := c.Download(context.Background(), key, "", &buf); err != nil {
		t.Fatalf("download %s: %v", key, err)
	}
	return buf.Bytes()
}

func TestWriteFleet(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		// Out of order on purpose; day is 2026-03-15.
		importVehicles(t, store,
			"ZZ10012,WVWZZZ1KZAW000012,912345602,2020-01-01,912345645,2025-01-01,", // last in order
			"AA10001,WVWZZZ1KZAW000001,912345602,2020-01-01,,,",                    // no lessee
			"AA10002,WVWZZZ1KZAW000002,912345602,2020-01-01,15038512363,2025-01-01,",
			"AA10003,WVWZZZ1KZAW000003,912345602,2020-01-01,912345645,2025-01-01,2026-03-14", // ended yesterday
			"AA10004,WVWZZZ1KZAW000004,912345602,2020-01-01,912345645,2026-03-16,",           // begins tomorrow
			"AA10005,WVWZZZ1KZAW000005,912345602,2020-01-01,912345629,2026-03-15,",           // begins today
			"AA10006,WVWZZZ1KZAW000006,912345602,2020-01-01,912345629,2025-01-01,2026-03-15", // ends today
			"AA10007,WVWZZZ1KZAW000007,912345602,2020-01-01,912345629,2025-01-01,2026-03-16", // ends tomorrow
			"AA10008,WVWZZZ1KZAW000008,912345610,2020-01-01,912345629,2025-01-01,",           // another owner's
			"AA10009,WVWZZZ1KZAW000009,912345602,2026-03-16,,,",                              // owned from tomorrow
			"AA10010,WVWZZZ1KZAW000010,912345602,2020-01-01,912345629,2025-01-01,",           // sold below
			"AA10011,WVWZZZ1KZAW000011,912345602,2020-01-01,912345629,2025-01-01,",           // two open below
			"AB10013,WVWZZZ1KZAW000013,912345602,2020-01-01,,,",
		)
		importVehicles(t, store,
			"AA10010,WVWZZZ1KZAW000010,912345610,2026-02-01,,,",
		)
		// A data error: a second period open on the same day; the export
		// lists the vehicle once, with the later start. PostgreSQL refuses
		// the import (lessee_periods_no_overlap), and the first stays.
		aa10011 := "AA10011,WVWZZZ1KZAW000011,912345645,,2025-06-01,"
		second := "AA10011,WVWZZZ1KZAW000011,912345602,2020-01-01,912345645,2025-06-01,"
		if store.Dialect() == sqlstore.DialectPostgres {
			if err := tryImportVehicles(t, store, second); err == nil || !strings.Contains(err.Error(), "overlap") {
				t.Fatalf("import of an overlapping period: %v", err)
			}
			aa10011 = "AA10011,WVWZZZ1KZAW000011,912345629,,2025-01-01,"
		} else {
			importVehicles(t, store, second)
		}
		objs := objects(t)
		tmp := t.TempDir()
		w := export.New(store, objs, export.Config{TempDir: tmp, Now: func() time.Time { return testNow }})
		if day, err := w.Day(); err != nil || day != testDay {
			t.Fatalf("Day() = %q, %v; want %s", day, err, testDay)
		}
		n, err := w.Write(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		want := `registration_number,vin,lessee_id,lessee_name,start_date,end_date
AA10001,WVWZZZ1KZAW000001,,,,
AA10002,WVWZZZ1KZAW000002,15038512363,,2025-01-01,
AA10003,WVWZZZ1KZAW000003,,,,
AA10004,WVWZZZ1KZAW000004,,,,
AA10005,WVWZZZ1KZAW000005,912345629,,2026-03-15,
AA10006,WVWZZZ1KZAW000006,,,,
AA10007,WVWZZZ1KZAW000007,912345629,,2025-01-01,2026-03-16
` + aa10011 + `
AB10013,WVWZZZ1KZAW000013,,,,
ZZ10012,WVWZZZ1KZAW000012,912345645,,2025-01-01,
`
		got := download(t, objs, objectkey.Export(owner))
		if string(got) != want {
			t.Errorf("export:\n%s\nwant:\n%s", got, want)
		}
		if n != 10 {
			t.Errorf("Write returned %d rows, want 10", n)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("temp files left: %v", left)
		}
		checkSnapshot(t, got)

		// The other fleet: its own vehicle and the one it bought, whose
		// lessee period (the vehicle's) goes with it.
		if n, err := w.Write(ctx, other); err != nil || n != 2 {
			t.Fatalf("Write(%s) = %d, %v", other, n, err)
		}
		if got := string(download(t, objs, objectkey.Export(other))); !strings.Contains(got, "\nAA10008,") ||
			!strings.Contains(got, "\nAA10010,WVWZZZ1KZAW000010,912345629,,2025-01-01,\n") {
			t.Errorf("export of %s:\n%s", other, got)
		}
		// A fleet owner without vehicles gets a header-only export.
		if n, err := w.Write(ctx, "912345637"); err != nil || n != 0 {
			t.Fatalf("Write of an empty fleet = %d, %v", n, err)
		}
		if got := string(download(t, objs, objectkey.Export("912345637"))); got != strings.Join(export.Header, ",")+"\n" {
			t.Errorf("empty fleet's export: %q", got)
		}
	})
}

// checkSnapshot reads an export back as our reader reads a snapshot
// upload and checks that it gets every row as written.
func checkSnapshot(t *testing.T, data []byte) {
	t.Helper()
	want, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.csv")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, limits := range []ingest.Limits{{Snapshot: true}} {
		info, err := ingest.Scan(context.Background(), path, limits)
		if err != nil {
			t.Fatalf("ingest refuses the export: %v", err)
		}
		if info.Rows != len(want)-1 || info.Delimiter != ',' || info.Encoding != "UTF-8" {
			t.Errorf("ingest info: rows %d, delimiter %q, encoding %s", info.Rows, info.Delimiter, info.Encoding)
		}
		// A snapshot ignores end_date: the registry's open period is kept.
		if !slices.Equal(info.IgnoredColumns, []string{"end_date"}) {
			t.Errorf("ignored columns %q, want [end_date]", info.IgnoredColumns)
		}
		table, _, err := ingest.Open(context.Background(), path, limits)
		if err != nil {
			t.Fatal(err)
		}
		orig, ok := table.(ingest.OriginalTable)
		if !ok {
			t.Fatalf("table %T gives no original records", table)
		}
		for i := 1; ; i++ {
			row, err := table.Next()
			if errors.Is(err, io.EOF) {
				if i != len(want) {
					t.Errorf("ingest read %d rows, want %d", i-1, len(want)-1)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if row.Problem != nil {
				t.Errorf("row %d: %v", row.Line, row.Problem)
			}
			rec := want[i]
			cells := map[lessee.Column]string{
				lessee.ColRegistrationNumber: rec[0], lessee.ColVIN: rec[1], lessee.ColLesseeID: rec[2],
				lessee.ColLesseeName: rec[3], lessee.ColStartDate: rec[4],
			}
			for c, v := range cells {
				if row.Cells[c].Value != strings.TrimSpace(v) {
					t.Errorf("row %d %s = %q, want %q", row.Line, c, row.Cells[c].Value, v)
				}
			}
			got := slices.Clone(orig.Original())
			for len(got) < len(rec) {
				got = append(got, "") // trailing empty cells dropped
			}
			if !slices.Equal(got, rec) {
				t.Errorf("row %d reads back as %q, want %q", row.Line, got, rec)
			}
		}
		if err := table.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeFleet is a FleetSource over a slice, failing after fail vehicles
// when fail > 0.
type fakeFleet struct {
	vehicles []lessee.FleetVehicle
	fail     int
	day      lessee.Date
}

func (f *fakeFleet) ExportFleet(ctx context.Context, orgnr string, day lessee.Date, fn func(lessee.FleetVehicle) error) error {
	f.day = day
	for i, v := range f.vehicles {
		if f.fail > 0 && i == f.fail {
			return errors.New("database went away")
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// countingPuts records every Put.
type countingPuts struct {
	mu   sync.Mutex
	puts map[string][]byte
	n    int
}

func (c *countingPuts) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if int64(len(b)) != size || contentType != export.ContentType {
		return errors.New("size or content type wrong")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.puts == nil {
		c.puts = map[string][]byte{}
	}
	c.puts[key] = b
	c.n++
	return nil
}

func TestWriteQuotesRoundTrip(t *testing.T) {
	t.Parallel()
	names := []string{`Hansen, Kari`, `"Ola" Nordmann`, "Line\nbreak", `Ærlig Åse Øvre`, `=SUM(A1)`, ` leading space`, `semi;colon`}
	var vs []lessee.FleetVehicle
	for i, n := range names {
		vs = append(vs, lessee.FleetVehicle{
			RegistrationNumber: "EL1000" + string(rune('0'+i)),
			VIN:                "WVWZZZ1KZAW00000" + string(rune('0'+i)),
			Lessee:             &lessee.Period{LesseeID: "15038512363", LesseeName: n, Start: "2025-01-01"},
		})
	}
	src := &fakeFleet{vehicles: vs}
	puts := &countingPuts{}
	w := export.New(src, puts, export.Config{TempDir: t.TempDir(), Now: func() time.Time { return testNow }})
	n, err := w.Write(context.Background(), owner)
	if err != nil || n != len(names) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if src.day != testDay {
		t.Errorf("fleet read for %s, want %s", src.day, testDay)
	}
	data := puts.puts[objectkey.Export(owner)]
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		want := n
		if strings.HasPrefix(n, "=") {
			// A formula is neutralised, as in receipts.
			want = "'" + n
		}
		if recs[i+1][3] != want {
			t.Errorf("name %q reads back as %q, want %q", n, recs[i+1][3], want)
		}
	}
	if bytes.HasPrefix(data, []byte("\uFEFF")) || bytes.Contains(data, []byte("\r")) {
		t.Errorf("export has a BOM or CR line ends")
	}
	checkSnapshot(t, data)
}

func TestWriteFailureLeavesPreviousExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vs := []lessee.FleetVehicle{{RegistrationNumber: "EL10001", VIN: "WVWZZZ1KZAW000001"}, {RegistrationNumber: "EL10002", VIN: "WVWZZZ1KZAW000002"}}
	puts := &countingPuts{}
	tmp := t.TempDir()
	cfg := export.Config{TempDir: tmp}
	if _, err := export.New(&fakeFleet{vehicles: vs}, puts, cfg).Write(ctx, owner); err != nil {
		t.Fatal(err)
	}
	before := string(puts.puts[objectkey.Export(owner)])
	if _, err := export.New(&fakeFleet{vehicles: vs, fail: 1}, puts, cfg).Write(ctx, owner); err == nil {
		t.Fatal("Write with a failing source succeeded")
	}
	if puts.n != 1 || string(puts.puts[objectkey.Export(owner)]) != before {
		t.Errorf("a failed export was stored (%d puts)", puts.n)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	for _, bad := range []string{"912345603", "../x", ""} {
		if _, err := export.New(&fakeFleet{}, puts, cfg).Write(ctx, bad); err == nil {
			t.Errorf("Write(%q) succeeded", bad)
		}
	}
}
