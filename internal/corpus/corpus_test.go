package corpus

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/validate"
)

var update = flag.Bool("update", false, "rewrite the corpus golden files")

// corpusDir is the corpus, at the module root.
const corpusDir = "../../testdata/corpus"

// corpusLimits are the limits every corpus file is read with: small, so that
// each limit is reached by a file small enough to commit.
func corpusLimits() ingest.Limits {
	return ingest.Limits{
		MaxBytes:         48 << 10,
		MaxRows:          200,
		MaxCellBytes:     512,
		MaxColumns:       30,
		MaxUnzipBytes:    4 << 20,
		MaxUnzipXMLBytes: 1 << 20,
	}
}

// The clock of every corpus job, so that receipts do not depend on the day
// the test runs.
var (
	processingDate = lessee.Date("2026-03-02")
	jobStarted     = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
)

// chunkSize is small so that files span several transactions, as large
// files do in production.
const chunkSize = 3

// goldenSuffixes mark the expected results beside each input.
const (
	goldenReceipt = ".golden.csv"
	goldenSummary = ".golden.json"
)

// summary is the golden JSON of one input: what ingest learnt and how the
// rows came out, or the refusal.
type summary struct {
	Format         string            `json:"format,omitempty"`
	Encoding       string            `json:"encoding,omitempty"`
	Delimiter      string            `json:"delimiter,omitempty"`
	HeaderLine     int               `json:"header_line,omitempty"`
	Columns        map[string]string `json:"columns,omitempty"`
	IgnoredColumns []string          `json:"ignored_columns,omitempty"`
	Rows           int               `json:"rows"`
	Applied        int               `json:"applied"`
	Unchanged      int               `json:"unchanged"`
	Rejected       int               `json:"rejected"`
	Codes          map[string]int    `json:"codes,omitempty"`
	Refusal        *refusal          `json:"refusal,omitempty"`
}

type refusal struct {
	Code    lessee.Code `json:"code"`
	Line    int         `json:"line,omitempty"`
	Message string      `json:"message"`
}

// input is one corpus file uploaded as inbox/<submitter>/<name>.
type input struct {
	path      string
	submitter string
	name      string
}

func inputs(t *testing.T) []input {
	t.Helper()
	var ins []input
	root := filepath.Join(corpusDir, "inbox")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(d.Name(), ".golden.") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 2 {
			return fmt.Errorf("%s: corpus inputs live in inbox/<orgnr>/<name>", rel)
		}
		ins = append(ins, input{path: p, submitter: parts[0], name: parts[1]})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

// registryTemplate builds one SQLite database holding the demo registry and
// returns its path; each corpus file gets a copy, so files never see each
// other's changes and no file pays for migrations.
func registryTemplate(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	regDir := filepath.Join(dir, "registry")
	if err := os.Mkdir(regDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := examples.WriteRegistry(regDir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "template.db")
	s, err := sqlstore.Open(ctx, "sqlite:"+p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, regDir, sqlstore.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// Closing the last connection checkpoints the WAL into the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func openCopy(t *testing.T, template string) *sqlstore.Store {
	t.Helper()
	b, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "lessee.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.Open(context.Background(), "sqlite:"+p)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return jobStarted }
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// TestCorpus runs every corpus file as the worker does and compares the
// receipt CSV and the summary with the golden files beside the input.
func TestCorpus(t *testing.T) {
	t.Parallel()
	ins := inputs(t)
	if len(ins) < 40 {
		t.Errorf("the corpus has %d inputs; it must keep at least 40", len(ins))
	}
	template := registryTemplate(t)
	for _, in := range ins {
		t.Run(in.submitter+"/"+in.name, func(t *testing.T) {
			t.Parallel()
			store := openCopy(t, template)
			var rcpt bytes.Buffer
			sum, outcomes := process(t, store, in, &rcpt)
			if sum.Format == string(lessee.FormatXLSX) && sum.Refusal == nil {
				checkXLSXReceipt(t, in.path, rcpt.Bytes(), outcomes)
			}
			js, err := json.MarshalIndent(sum, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, in.path+goldenSummary, append(js, '\n'))
			compareGolden(t, in.path+goldenReceipt, rcpt.Bytes())
		})
	}
}

// process mirrors worker.Handler: terms, first pass, rows in chunks through
// validate and sqlstore, then the receipt from the stored results.
func process(t *testing.T, store *sqlstore.Store, in input, out io.Writer) (summary, []lessee.Result) {
	t.Helper()
	ctx := context.Background()
	job, err := store.BeginJob(ctx, lessee.Job{
		ID: "corpus", Bucket: "lessee", Key: "inbox/" + in.submitter + "/" + in.name, Version: "1",
		Submitter: in.submitter, Name: in.name, State: lessee.JobRunning,
		ProcessingDate: processingDate, Started: jobStarted,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := receipt.NewCSVWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	refuse := func(sum summary, r *lessee.Error) (summary, []lessee.Result) {
		t.Helper()
		sum.Refusal = &refusal{Code: r.Code, Line: r.Line, Message: r.Message}
		if err := w.WriteRefusal(r.Line, r.Code, r.Message); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return sum, nil
	}

	ent, err := store.Enterprise(ctx, in.submitter)
	if lessee.ErrorCode(err) == lessee.ENOTFOUND {
		ent, err = nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if r := validate.CheckSubmitter(ent, in.submitter, job.Started); r != nil {
		return refuse(summary{}, r)
	}

	limits := corpusLimits()
	info, err := ingest.Scan(ctx, in.path, limits)
	if r, ok := lessee.AsRefusal(err); ok {
		return refuse(summary{Format: string(info.Format)}, r)
	}
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	sum := summaryOf(info)
	job.Format, job.RowsTotal, job.IgnoredColumns = info.Format, info.Rows, info.IgnoredColumns
	if err := store.UpdateJobInfo(ctx, job); err != nil {
		t.Fatal(err)
	}

	table, info2, err := ingest.Open(ctx, in.path, limits)
	if err != nil {
		t.Fatalf("open after a clean scan: %v", err)
	}
	defer table.Close()
	info2.Rows = info.Rows
	if !equalInfo(info, info2) {
		t.Errorf("Open's info %+v differs from Scan's %+v", info2, info)
	}
	cfg := validate.Config{}
	vjob := validate.Job{ID: job.ID, Submitter: job.Submitter, ProcessingDate: job.ProcessingDate, Now: job.Started}
	checkpoint := 0
	var rows []lessee.Row
	flush := func() {
		t.Helper()
		if len(rows) == 0 {
			return
		}
		err := store.ApplyChunk(ctx, job.ID, checkpoint, validate.KeysFor(vjob, rows), func(st *lessee.State) lessee.Decision {
			return validate.Decide(cfg, vjob, st, rows)
		})
		if err != nil {
			t.Fatal(err)
		}
		checkpoint += len(rows)
		rows = rows[:0]
	}
	for {
		raw, err := table.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("second pass after a clean scan: %v", err)
		}
		rows = append(rows, validate.ParseRow(cfg, vjob, raw))
		if len(rows) == chunkSize {
			flush()
		}
	}
	flush()

	var outcomes []lessee.Result
	err = store.Results(ctx, job.ID, func(o lessee.Result) error {
		outcomes = append(outcomes, o)
		switch o.Status {
		case lessee.StatusApplied:
			sum.Applied++
		case lessee.StatusUnchanged:
			sum.Unchanged++
		case lessee.StatusRejected:
			sum.Rejected++
			if sum.Codes == nil {
				sum.Codes = map[string]int{}
			}
			sum.Codes[string(o.Code)]++
		}
		return w.Write(o)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != info.Rows {
		t.Errorf("%d results for %d rows", len(outcomes), info.Rows)
	}
	for i := 1; i < len(outcomes); i++ {
		if outcomes[i].Line <= outcomes[i-1].Line {
			t.Errorf("row numbers not increasing: %d after %d", outcomes[i].Line, outcomes[i-1].Line)
		}
	}
	return sum, outcomes
}

func summaryOf(info ingest.Info) summary {
	s := summary{
		Format: string(info.Format), Encoding: info.Encoding, HeaderLine: info.HeaderLine,
		IgnoredColumns: info.IgnoredColumns, Rows: info.Rows, Columns: map[string]string{},
	}
	if info.Delimiter != 0 {
		s.Delimiter = string(info.Delimiter)
	}
	for c, name := range info.Columns {
		if name != "" {
			s.Columns[lessee.Column(c).String()] = name
		}
	}
	return s
}

func equalInfo(a, b ingest.Info) bool {
	return a.Format == b.Format && a.Columns == b.Columns && slices.Equal(a.IgnoredColumns, b.IgnoredColumns) &&
		a.Delimiter == b.Delimiter && a.Encoding == b.Encoding && a.HeaderLine == b.HeaderLine
}

// checkXLSXReceipt writes the XLSX receipt an XLSX input gets, as the
// worker does: each of the input's records as uploaded, read again in step
// with its outcome. It checks the user's cells against the input, masked and
// neutralised, the row number and outcome against the CSV receipt, and that
// every cell is a string cell.
func checkXLSXReceipt(t *testing.T, path string, csvReceipt []byte, outcomes []lessee.Result) {
	t.Helper()
	table, info, err := ingest.Open(context.Background(), path, corpusLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	ot, ok := table.(ingest.OriginalTable)
	if !ok {
		t.Fatalf("%T is not an ingest.OriginalTable", table)
	}
	var originals [][]string
	var buf bytes.Buffer
	err = receipt.WriteXLSX(&buf, receipt.XLSXOptions{TempDir: t.TempDir()}, info.Header, func(yield func([]string, lessee.Result) error) error {
		for _, o := range outcomes {
			raw, err := ot.Next()
			if err != nil {
				return err
			}
			if raw.Index != o.Index || raw.Line != o.Line {
				return fmt.Errorf("record %d is row %d, its outcome says record %d, row %d", raw.Index, raw.Line, o.Index, o.Line)
			}
			originals = append(originals, slices.Clone(ot.Original()))
			if err := yield(ot.Original(), o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.GetRows(receipt.SheetName, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(csvReceipt, []byte("\uFEFF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("XLSX receipt has %d rows, CSV receipt %d", len(got), len(want))
	}
	user := func(cells []string) []string {
		out := make([]string, len(info.Header))
		for i := 0; i < len(cells) && i < len(out); i++ {
			out[i] = receipt.Neutralise(ident.MaskText(cells[i]))
		}
		return out
	}
	width := 1 + len(info.Header) + 4
	for i := range want {
		// GetRows drops trailing empty cells.
		g := make([]string, max(width, len(got[i])))
		copy(g, got[i])
		w := append([]string{want[i][0]}, append(user(info.Header), "status", "code", "message", "change_id")...)
		if i > 0 {
			w = append([]string{want[i][0]}, append(user(originals[i-1]), want[i][6:10]...)...)
		}
		if !slices.Equal(g, w) {
			t.Errorf("XLSX receipt row %d = %q, want %q", i+1, g, w)
		}
		// Every cell is text, the row number included: its type, not only
		// its value, which GetRows gives as text for a number too.
		for c := range width {
			cell, _ := excelize.CoordinatesToCellName(c+1, i+1)
			typ, err := f.GetCellType(receipt.SheetName, cell)
			if err != nil {
				t.Fatal(err)
			}
			if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
				t.Errorf("XLSX receipt %s = %q is a %v cell, want a string", cell, g[c], typ)
			}
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s",
			filepath.Base(path), got, want)
	}
}
