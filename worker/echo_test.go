package worker

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// multiLineRefs are references as an integration sends them, with every
// kind of line break inside the quotes, a formula trigger, quotes and
// letters beyond ASCII.
var multiLineRefs = []string{
	"lf\nref",
	"crlf\r\nref",
	"cr\rref",
	"mixed\n\r\n\rend",
	"=1+1\nformula",
	"quote \"q\",\r\nx",
	"ørn\r\nÆ",
}

// echoFile is a CSV as Excel writes it (';', CRLF record ends) of n rows,
// each with reference refs[i%len(refs)] and a row suffix, all rejected
// (no lessee_id), and the references it holds.
func echoFile(n int) ([]byte, []string) {
	var b bytes.Buffer
	b.WriteString("operation;registration_number;start_date;reference\r\n")
	var refs []string
	for i := range n {
		ref := fmt.Sprintf("%s #%d", multiLineRefs[i%len(multiLineRefs)], i)
		refs = append(refs, ref)
		fmt.Fprintf(&b, "add;ZZ%05d;2026-01-01;\"%s\"\r\n", i, strings.ReplaceAll(ref, `"`, `""`))
	}
	return b.Bytes(), refs
}

// rawRecords splits a receipt CSV into records of fields without
// encoding/csv, so that nothing inside quotes is rewritten: each field is
// its bytes, quotes undone. It fails the test on a record that does not end
// with CRLF.
func rawRecords(t *testing.T, b []byte) [][]string {
	t.Helper()
	var recs [][]string
	var rec []string
	var field []byte
	inQuote := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inQuote && c == '"' && i+1 < len(b) && b[i+1] == '"':
			field = append(field, '"')
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
			field = append(field, c)
		case c == ',':
			rec = append(rec, string(field))
			field = field[:0]
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			recs = append(recs, append(rec, string(field)))
			rec, field = nil, field[:0]
			i++
		case c == '\r' || c == '\n':
			t.Fatalf("byte %d: a record ends with %q, not CRLF: %q", i, c, b[max(0, i-40):min(len(b), i+40)])
		default:
			field = append(field, c)
		}
	}
	if inQuote || len(rec) > 0 || len(field) > 0 {
		t.Fatalf("receipt does not end with a complete record and CRLF: %q", b[max(0, len(b)-80):])
	}
	return recs
}

// TestHandlerEchoesMultiLineReferences: a reference with LF, CRLF or CR
// inside quotes comes back in the published receipt CSV byte for byte, as
// an integration joining receipts on its reference needs, through the
// whole path: S3 upload, ingest, the results table of SQLite and
// PostgreSQL (INSERT for a chunk of a few rows, COPY for a larger one),
// the receipt CSV on S3. Records still end with CRLF, the BOM leads and a
// formula trigger is neutralised.
func TestHandlerEchoesMultiLineReferences(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		rows, chunk int
	}{
		{"FewRowsPerChunk", len(multiLineRefs), 3},
		{"CopiedChunks", 3 * len(multiLineRefs), 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
				ctx := context.Background()
				b := setup(t, store)
				b.handler.cfg.ChunkSize = tc.chunk
				data, refs := echoFile(tc.rows)
				const key = "inbox/912345602/multi-line.csv"
				p := b.putBytes(t, key, data)
				if err := b.handler.Process(ctx, p); err != nil {
					t.Fatal(err)
				}

				// The results table gives back what was stored.
				var stored []string
				err := store.Results(ctx, intake.JobID(p.Bucket, p.Key, p.Version), func(r lessee.Result) error {
					stored = append(stored, r.Echo.Reference)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(stored, refs) {
					t.Errorf("stored references\n%q\nwant\n%q", stored, refs)
				}

				raw := b.get(t, "receipts/912345602/multi-line.csv.receipt.csv")
				body, ok := bytes.CutPrefix(raw, []byte("\ufeff"))
				if !ok {
					t.Fatalf("receipt does not start with a BOM: %q", raw[:min(len(raw), 20)])
				}
				recs := rawRecords(t, body)
				if len(recs) != len(refs)+1 || !slices.Equal(recs[0], receipt.Header()) {
					t.Fatalf("receipt records %q, want the header and %d lines", recs, len(refs))
				}
				parsed, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				for i, ref := range refs {
					rec := recs[i+1]
					want := receipt.Neutralise(ref)
					if rec[1] != want {
						t.Errorf("line %d: reference %q, want %q", i+1, rec[1], want)
					}
					if rec[0] != fmt.Sprint(i+2) || rec[6] != string(lessee.StatusRejected) || rec[7] != string(lessee.CodeMissingField) {
						t.Errorf("line %d = %q, want row %d rejected MISSING_FIELD", i+1, rec, i+2)
					}
					// encoding/csv reads the same record; it makes a CRLF
					// inside quotes LF, as it always does.
					if got := parsed[i+1]; got[1] != strings.ReplaceAll(want, "\r\n", "\n") || !slices.Equal(got[2:], rec[2:]) || got[0] != rec[0] {
						t.Errorf("line %d read by encoding/csv as %q, want %q", i+1, got, rec)
					}
					// The raw bytes of the cell, quoted, are in the receipt.
					cell := `"` + strings.ReplaceAll(want, `"`, `""`) + `"`
					if !bytes.Contains(body, []byte("\r\n"+rec[0]+","+cell+",add,")) {
						t.Errorf("line %d: the receipt lacks the bytes %q", i+1, cell)
					}
				}
			})
		})
	}
}

// TestHandlerXLSXEchoesMultiLineCells: an XLSX upload whose cells hold line
// breaks gets them back in both receipts, and every cell of its XLSX
// receipt, the row number included, is a string cell.
func TestHandlerXLSXEchoesMultiLineCells(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlstoretest.SQLite(t))
	const key = "inbox/912345602/multi-line.xlsx"
	p := b.putWorkbook(t, key, func(f *excelize.File) {
		sheetRow(t, f, 1, "operation", "registration_number", "start_date", "reference", "Merknad")
		for i, ref := range multiLineRefs {
			sheetRow(t, f, i+2, "add", fmt.Sprintf("ZZ%05d", i), "2026-01-01", ref, i)
		}
	})
	if err := b.handler.Process(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	body := bytes.TrimPrefix(b.get(t, "receipts/912345602/multi-line.xlsx.receipt.csv"), []byte("\ufeff"))
	recs := rawRecords(t, body)
	x, rows := openXLSXReceipt(t, b.get(t, "receipts/912345602/multi-line.xlsx.receipt.xlsx"))
	if len(recs) != len(multiLineRefs)+1 || len(rows) != len(multiLineRefs)+1 {
		t.Fatalf("CSV receipt %q, XLSX receipt %q; want the header and %d lines each", recs, rows, len(multiLineRefs))
	}
	for i, ref := range multiLineRefs {
		want := receipt.Neutralise(ref)
		if recs[i+1][1] != want {
			t.Errorf("CSV line %d: reference %q, want %q", i+1, recs[i+1][1], want)
		}
		if got := pad(rows[i+1], 10); got[4] != want || got[0] != fmt.Sprint(i+2) {
			t.Errorf("XLSX line %d = %q, want row %d and reference %q", i+1, got, i+2, want)
		}
	}
	checkAllText(t, x, rows, 10) // row, five user columns, status, code, message, change_id
}
