package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/fleetreg/lessee/storage/sqlstore"
)

// ParseCSV reads the CSV file with encoding/csv and nothing else: the least
// any path that reads the file must spend.
func ParseCSV(path string) (Measure, error) {
	start := time.Now()
	fh, err := os.Open(path)
	if err != nil {
		return Measure{}, fmt.Errorf("parse csv: %w", err)
	}
	defer func() { _ = fh.Close() }() // only read
	r := csv.NewReader(bufio.NewReaderSize(fh, 1<<20))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	n := -1 // the header
	for {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Measure{}, fmt.Errorf("parse csv: %w", err)
		}
		n++
	}
	return Measure{Rows: n, Wall: time.Since(start)}, nil
}

// ParseXLSX reads the first sheet with excelize's streaming row iterator,
// with excelize's default options.
func ParseXLSX(path string) (Measure, error) {
	start := time.Now()
	f, err := excelize.OpenFile(path)
	if err != nil {
		return Measure{}, fmt.Errorf("parse xlsx: %w", err)
	}
	defer f.Close()
	rows, err := f.Rows(f.GetSheetName(0))
	if err != nil {
		return Measure{}, fmt.Errorf("parse xlsx: %w", err)
	}
	n := -1 // the header
	for rows.Next() {
		if _, err = rows.Columns(); err != nil {
			break
		}
		n++
	}
	if err == nil {
		err = rows.Error()
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Measure{}, fmt.Errorf("parse xlsx: %w", err)
	}
	return Measure{Rows: n, Wall: time.Since(start)}, nil
}

// CSVToXLSX writes the rows of a CSV file as the first sheet of an XLSX
// workbook with excelize's StreamWriter, every cell as text.
func CSVToXLSX(csvPath, xlsxPath string) error {
	in, err := os.Open(csvPath)
	if err != nil {
		return fmt.Errorf("csv to xlsx: %w", err)
	}
	defer func() { _ = in.Close() }() // only read
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		return fmt.Errorf("csv to xlsx: %w", err)
	}
	r := csv.NewReader(bufio.NewReaderSize(in, 1<<20))
	r.FieldsPerRecord = -1
	var cells []any
	for row := 1; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("csv to xlsx: %w", err)
		}
		cells = cells[:0]
		for _, v := range rec {
			cells = append(cells, v)
		}
		cell, err := excelize.CoordinatesToCellName(1, row)
		if err != nil {
			return fmt.Errorf("csv to xlsx: %w", err)
		}
		if err := sw.SetRow(cell, cells); err != nil {
			return fmt.Errorf("csv to xlsx: row %d: %w", row, err)
		}
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("csv to xlsx: %w", err)
	}
	if err := f.SaveAs(xlsxPath); err != nil {
		return fmt.Errorf("csv to xlsx: %w", err)
	}
	return nil
}

// CopyFloor reads the CSV file and COPYs its rows, with their index, into
// a table of the same columns (text, no index) in the schema of
// databaseURL, in one transaction: the least it can cost to get the rows
// into PostgreSQL at all.
func CopyFloor(ctx context.Context, databaseURL, path string) (Measure, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return Measure{}, fmt.Errorf("floor: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE change_rows (row_index integer, operation text,
		registration_number text, vin text, lessee_id text, lessee_name text, start_date text,
		end_date text, on_behalf_of text, reference text)`); err != nil {
		return Measure{}, fmt.Errorf("floor: %w", err)
	}
	start := time.Now()
	fh, err := os.Open(path)
	if err != nil {
		return Measure{}, fmt.Errorf("floor: %w", err)
	}
	defer func() { _ = fh.Close() }() // only read
	r := csv.NewReader(bufio.NewReaderSize(fh, 1<<20))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return Measure{}, fmt.Errorf("floor: header: %w", err)
	}
	n := 0
	vals := make([]any, 10)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		vals[0] = n
		for i := range 9 {
			vals[i+1] = ""
			if i < len(rec) {
				vals[i+1] = rec[i]
			}
		}
		n++
		return vals, nil
	})
	tx, err := conn.Begin(ctx)
	if err != nil {
		return Measure{}, fmt.Errorf("floor: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"change_rows"}, []string{"row_index", "operation", "registration_number",
		"vin", "lessee_id", "lessee_name", "start_date", "end_date", "on_behalf_of", "reference"}, src); err != nil {
		return Measure{}, fmt.Errorf("floor: copy: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Measure{}, fmt.Errorf("floor: commit: %w", err)
	}
	return Measure{Rows: n, Wall: time.Since(start)}, nil
}

// withSchema runs fn with a URL whose connections use a fresh schema of
// databaseURL's database, dropped afterwards.
func withSchema(ctx context.Context, databaseURL string, fn func(url string) (Measure, error)) (Measure, error) {
	schemaURL, drop, err := NewSchema(ctx, databaseURL)
	if err != nil {
		return Measure{}, err
	}
	defer drop()
	return fn(schemaURL)
}

// NewSchema creates a fresh schema in databaseURL's database and returns a
// URL whose connections use it, and a function that drops it.
func NewSchema(ctx context.Context, databaseURL string) (string, func(), error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("bench: the database URL must be postgres://")
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	schema := "bench_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return "", nil, fmt.Errorf("bench: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("bench: create schema: %w", err)
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if c, err := pgx.Connect(dctx, databaseURL); err == nil {
			_, _ = c.Exec(dctx, "DROP SCHEMA "+schema+" CASCADE")
			_ = c.Close(dctx)
		}
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as run-time settings
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// importRegistry migrates the schema of databaseURL and loads the registry
// files of dir into it, then refreshes the planner's statistics, as a
// registry that has been in use would have them.
func importRegistry(ctx context.Context, databaseURL, dir string) error {
	s, err := sqlstore.Open(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := s.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("bench: analyze: %w", err)
	}
	return nil
}
