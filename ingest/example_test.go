package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
)

// writeExample writes content to name in a new temporary directory and
// returns its path and a function that removes the directory.
func writeExample(name, content string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "ingest-example")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return p, cleanup, nil
}

// Open reads the header and yields the data records in file order. Line is
// the row a spreadsheet shows: the header is row 1, and the blank line is a
// row that yields no record. Header names are matched against aliases, in
// English or Norwegian, in any case.
func ExampleOpen() {
	p, cleanup, err := writeExample("changes.csv",
		"Operasjon;Kjennemerke;Leietaker;Fra dato;Til dato;Referanse\n"+
			"add;AB12345;910000001;2025-07-01;;r1\n"+
			"\n"+
			"remove;CD67890;;;2025-08-15;r2\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	t, info, err := ingest.Open(context.Background(), p, ingest.DefaultLimits())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	fmt.Printf("format %s, delimiter %q, encoding %s\n", info.Format, info.Delimiter, info.Encoding)
	for {
		row, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("line %d: %s %s (%s)\n", row.Line,
			row.Cells[lessee.ColOperation].Value,
			row.Cells[lessee.ColRegistrationNumber].Value,
			row.Cells[lessee.ColReference].Value)
	}
	// Output:
	// format csv, delimiter ';', encoding UTF-8
	// line 2: add AB12345 (r1)
	// line 4: remove CD67890 (r2)
}

// Scan reads the whole file once, checking every limit, and counts its data
// records; columns that mean nothing to lessee are reported, not refused.
func ExampleScan() {
	p, cleanup, err := writeExample("changes.csv",
		"operation,vin,lessee_id,comment\n"+
			"add,WVWZZZ1JZ3W386752,910000001,new contract\n"+
			"remove,WBA3A5C51CF256985,,\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	info, err := ingest.Scan(context.Background(), p, ingest.DefaultLimits())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d rows, delimiter %q, ignored %q\n", info.Rows, info.Delimiter, info.IgnoredColumns)
	// Output:
	// 2 rows, delimiter ',', ignored ["comment"]
}

// A file that cannot be read as a table is refused as a whole with a
// *lessee.Error: a code for the receipt and the row it concerns.
func ExampleOpen_refusal() {
	p, cleanup, err := writeExample("changes.csv",
		"registration_number;lessee_id\n"+
			"AB12345;910000001\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	t, _, err := ingest.Open(context.Background(), p, ingest.DefaultLimits())
	if err == nil {
		_ = t.Close()
		fmt.Println("opened")
		return
	}
	r, ok := lessee.AsRefusal(err)
	if !ok {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s on line %d\n", r.Code, r.Line)
	// Output:
	// MISSING_COLUMN on line 1
}
