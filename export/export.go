package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"time"
	_ "time/tzdata" // Europe/Oslo must resolve even in minimal containers

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/receipt"
)

// Header is the export's header row: the snapshot columns it fills.
var Header = []string{"registration_number", "vin", "lessee_id", "lessee_name", "start_date", "end_date"}

// ContentType is the content type the export is stored with.
const ContentType = "text/csv; charset=utf-8"

// TempPrefix begins the names of the temporary files a Writer spools
// exports into; a process killed mid-way leaves one behind, and its
// successor may remove them at start.
const TempPrefix = "lessee-export-"

// FleetSource streams a fleet; *sqlstore.Store satisfies it.
type FleetSource interface {
	// ExportFleet calls fn for every vehicle orgnr owns on day, in
	// registration-number order, with the lessee period open that day.
	ExportFleet(ctx context.Context, orgnr string, day lessee.Date, fn func(lessee.FleetVehicle) error) error
}

// ObjectWriter stores an object whole: a reader sees the old object or
// the new one. *s3store.Client satisfies it.
type ObjectWriter interface {
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
}

// Config tunes a Writer. Its zero value spools in os.TempDir and takes
// the day from the real clock in Europe/Oslo.
type Config struct {
	TempDir  string           // where exports are spooled; "" means os.TempDir
	Now      func() time.Time // the clock; nil means time.Now
	Location *time.Location   // whose day "today" is; nil means Europe/Oslo
}

// Writer writes fleet exports.
type Writer struct {
	fleets  FleetSource
	objects ObjectWriter
	cfg     Config
}

// New returns a Writer that reads fleets from fleets and stores their
// exports through objects.
func New(fleets FleetSource, objects ObjectWriter, cfg Config) *Writer {
	return &Writer{fleets: fleets, objects: objects, cfg: cfg}
}

// Day returns the day an export written now lists the fleet on: today in
// the Writer's location.
func (w *Writer) Day() (lessee.Date, error) {
	loc := w.cfg.Location
	if loc == nil {
		// time/tzdata makes sure Europe/Oslo loads; loading it costs
		// microseconds next to an export.
		var err error
		if loc, err = time.LoadLocation("Europe/Oslo"); err != nil {
			return "", fmt.Errorf("load time zone: %w", err)
		}
	}
	now := time.Now
	if w.cfg.Now != nil {
		now = w.cfg.Now
	}
	return lessee.DateOf(now().In(loc)), nil
}

// Write writes the export of orgnr's fleet as of today to
// objectkey.Export(orgnr) and returns how many vehicles it lists. The
// rows stream from the FleetSource into a temporary file, removed at the
// end, which is then stored with one Put: on any error the previous export
// stays as it was. Write does not check that orgnr holds the fleet-owner
// role; an enterprise that owns no vehicle gets a header-only export.
func (w *Writer) Write(ctx context.Context, orgnr string) (rows int, err error) {
	if err := ident.OrgNr(orgnr); err != nil {
		return 0, fmt.Errorf("export %q: %w", orgnr, err)
	}
	key := objectkey.Export(orgnr)
	day, err := w.Day()
	if err != nil {
		return 0, fmt.Errorf("export %s: %w", key, err)
	}
	f, err := os.CreateTemp(w.cfg.TempDir, TempPrefix+"*.csv")
	if err != nil {
		return 0, fmt.Errorf("export %s: create temp file: %w", key, err)
	}
	defer os.Remove(f.Name())
	defer func() { _ = f.Close() }() // a spool: its writes are checked by Flush, then it is removed

	size, rows, err := w.spool(ctx, f, orgnr, day)
	if err != nil {
		return 0, fmt.Errorf("export %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("export %s: %w", key, err)
	}
	if err := w.objects.Put(ctx, key, f, size, ContentType); err != nil {
		return 0, fmt.Errorf("export %s: %w", key, err)
	}
	return rows, nil
}

// spool writes the CSV of orgnr's fleet on day to f and returns its size
// and how many vehicles it lists.
func (w *Writer) spool(ctx context.Context, f *os.File, orgnr string, day lessee.Date) (size int64, rows int, err error) {
	counter := &countingWriter{w: f}
	buf := bufio.NewWriterSize(counter, 64<<10)
	cw := csv.NewWriter(buf) // comma, LF line ends, quotes where a value needs them
	if err := cw.Write(Header); err != nil {
		return 0, 0, err
	}
	record := make([]string, len(Header))
	err = w.fleets.ExportFleet(ctx, orgnr, day, func(v lessee.FleetVehicle) error {
		record[0], record[1] = v.RegistrationNumber, v.VIN
		record[2], record[3], record[4], record[5] = "", "", "", ""
		if p := v.Lessee; p != nil {
			// The name is the only free text: a leading formula trigger is
			// neutralised as in receipts, since the fleet owner opens this
			// file in a spreadsheet, and a third party may have written it.
			record[2], record[3], record[4], record[5] = p.LesseeID, receipt.Neutralise(p.LesseeName), string(p.Start), string(p.End)
		}
		rows++
		return cw.Write(record)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read fleet: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return 0, 0, fmt.Errorf("write temp file: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return 0, 0, fmt.Errorf("write temp file: %w", err)
	}
	return counter.n, rows, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
