package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/worker"
)

// WriteFloor is the least the database must do to store what an end-to-end
// run wrote: exactly its writes, with nothing to read or decide. Its lessee
// periods are written as the run's chunks wrote them (a period is inserted
// as the chunk that opened it left it, and every later chunk that ended it
// sets its end date again; replayed from the audit log chunk by chunk, as
// the constraint against overlapping periods requires), then its per-row
// results and its audit entries, into a fresh registry of the project's
// schema (every index and constraint, the registry imported as the run had
// it), in one transaction, by the database's fastest bulk path. On
// PostgreSQL that is COPY and, per chunk, one UPDATE ... FROM unnest of the
// end dates; on SQLite prepared multi-row INSERTs and a prepared UPDATE per
// end date. The rows are read back from the run's registry before the
// clock starts.
type WriteFloor struct {
	// Measure: Rows is the file's rows the written rows stand for, so that
	// per-row ratios are ratios of wall time; Wall the transaction, from
	// BEGIN to COMMIT.
	Measure
	Database string // "PostgreSQL 17.2" or "SQLite 3.x (embedded)"
	// What was written: periods inserted, results, audit entries, and end
	// dates set on periods a chunk found on file (the same period counts
	// once per chunk that ended it).
	Periods, Results, Audit, Updates int
	// Steps times each statement of the transaction, in order.
	Steps []FloorStep
	// DatabaseURL is the floor's registry with Config.Keep.
	DatabaseURL string
}

// FloorStep is one timed statement of the write floor.
type FloorStep struct {
	Name string
	Rows int
	Wall time.Duration
}

// measureWriteFloor measures the write floor of run, which has just
// finished on b (its service stopped): a fresh registry of the same kind,
// the registry files imported, then what the run wrote for its job.
// Periods are told apart by comparing the run's registry with the floor's
// before the clock starts: an id the import did not write was inserted, an
// end date that differs was set. Vehicles of other jobs' audit entries
// (the small file's) are left out.
func measureWriteFloor(ctx context.Context, cfg Config, b *backend, f files, run *EndToEnd, step func(string, ...any)) (*WriteFloor, error) {
	if b.sqlite() {
		return sqliteWriteFloor(ctx, cfg, b, f, run, step)
	}
	return pgWriteFloor(ctx, cfg, b, f, run, step)
}

// The tables a run writes, in the order the floor writes them; their
// columns are read from the run's registry.
var floorTables = []string{"lessee_periods", "row_results", "audit_log"}

// floorQueries returns the queries that read back what job wrote, per
// table (lessee_periods: the periods it inserted, as they ended up), and
// its applied changes in row order (row index, change id, before and after
// state), with the floor's registry reachable under the prefix floor
// ("schema." or "f.").
func floorQueries(cols map[string][]string, floor, job string) (map[string]string, string) {
	lit := "'" + strings.ReplaceAll(job, "'", "''") + "'"
	// One scan of the audit log for the vehicles of other jobs (hashed or
	// materialized once), not a probe of every vehicle's entries per period.
	others := `r.vin NOT IN (SELECT o.vin FROM audit_log AS o WHERE o.job_id <> ` + lit + `)`
	sel := func(table string) string {
		qs := make([]string, len(cols[table]))
		for i, c := range cols[table] {
			qs[i] = "r." + c
		}
		return "SELECT " + strings.Join(qs, ", ") + " FROM " + table + " AS r"
	}
	return map[string]string{
			"lessee_periods": sel("lessee_periods") + ` WHERE NOT EXISTS (SELECT 1 FROM ` + floor + `lessee_periods AS b WHERE b.id = r.id) AND ` + others,
			"row_results":    sel("row_results") + ` WHERE r.job_id = ` + lit,
			"audit_log":      sel("audit_log") + ` WHERE r.job_id = ` + lit,
		}, `SELECT r.row_index, a.change_id, a.before_json, a.after_json
		FROM audit_log AS a JOIN row_results AS r ON r.job_id = a.job_id AND r.change_id = a.change_id
		WHERE a.job_id = ` + lit + ` ORDER BY r.row_index`
}

// planFromRows plans the period writes from the periods and changes read
// back (see floorQueries) for chunks of chunkSize rows.
func planFromRows(cols []string, periods, changeRows [][]any, chunkSize int) ([][]any, []chunkWrites, error) {
	idCol, endCol := slices.Index(cols, "id"), slices.Index(cols, "end_date")
	if idCol < 0 || endCol < 0 {
		return nil, nil, fmt.Errorf("lessee_periods has no id or end_date column: %v", cols)
	}
	changes := make([]floorChange, 0, len(changeRows))
	for _, r := range changeRows {
		index, ok := r[0].(int64)
		if !ok {
			if i32, ok32 := r[0].(int32); ok32 {
				index, ok = int64(i32), true
			}
		}
		changeID, ok2 := r[1].(string)
		before, ok3 := r[2].(string)
		after, ok4 := r[3].(string)
		if !ok || !ok2 || !ok3 || !ok4 {
			return nil, nil, fmt.Errorf("audit entry %v: unexpected column types %T %T %T %T", r, r[0], r[1], r[2], r[3])
		}
		id, end, err := auditPeriod(before, after)
		if err != nil {
			return nil, nil, fmt.Errorf("audit entry %s: %w", changeID, err)
		}
		changes = append(changes, floorChange{Index: int(index), ChangeID: changeID, Period: id, End: end})
	}
	return planPeriodWrites(periods, idCol, endCol, changes, chunkSize)
}

// countEnds is how many end dates plan sets.
func countEnds(plan []chunkWrites) int {
	n := 0
	for _, c := range plan {
		n += len(c.Ends)
	}
	return n
}

// pgWriteFloor: the run's rows are COPYed out in binary to files under the
// work directory, then COPYed into the floor's schema.
func pgWriteFloor(ctx context.Context, cfg Config, b *backend, f files, run *EndToEnd, step func(string, ...any)) (*WriteFloor, error) {
	step("write floor: importing the registry into a fresh schema")
	floorURL, drop, err := NewSchema(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	wf := &WriteFloor{Measure: Measure{Rows: run.Rows}}
	if cfg.Keep {
		wf.DatabaseURL = floorURL
	} else {
		defer drop()
	}
	if err := importRegistry(ctx, floorURL, f.regDir); err != nil {
		return nil, err
	}
	fc, err := pgx.Connect(ctx, floorURL)
	if err != nil {
		return nil, err
	}
	defer fc.Close(ctx)
	var floorSchema, version string
	if err := fc.QueryRow(ctx, `SELECT current_schema(), current_setting('server_version')`).Scan(&floorSchema, &version); err != nil {
		return nil, err
	}
	wf.Database = "PostgreSQL " + strings.Fields(version)[0]

	step("write floor: reading back what the run wrote")
	rc, err := pgx.Connect(ctx, b.storeURL)
	if err != nil {
		return nil, err
	}
	defer rc.Close(ctx)
	cols := map[string][]string{}
	for _, t := range floorTables {
		rows, err := rc.Query(ctx, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t)
		if err != nil {
			return nil, err
		}
		if cols[t], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
	}
	queries, changesQuery := floorQueries(cols, pgx.Identifier{floorSchema}.Sanitize()+".", run.JobID)
	tmp, err := os.MkdirTemp(f.dir, "floor-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	copyOut := func(name, query string) (string, int, error) {
		path := filepath.Join(tmp, name)
		fh, err := os.Create(path)
		if err != nil {
			return "", 0, err
		}
		bw := bufio.NewWriterSize(fh, 1<<20)
		tag, err := rc.PgConn().CopyTo(ctx, bw, "COPY ("+query+") TO STDOUT (FORMAT binary)")
		if err == nil {
			err = bw.Flush()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", 0, fmt.Errorf("read back %s: %w", name, err)
		}
		return path, int(tag.RowsAffected()), nil
	}
	readRows := func(query string) ([][]any, error) {
		rows, err := rc.Query(ctx, query)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	}
	files := map[string]string{}
	counts := map[string]int{}
	for _, t := range floorTables[1:] {
		if files[t], counts[t], err = copyOut(t, queries[t]); err != nil {
			return nil, err
		}
	}
	periods, err := readRows(queries["lessee_periods"])
	if err != nil {
		return nil, fmt.Errorf("read back lessee_periods: %w", err)
	}
	changes, err := readRows(changesQuery)
	if err != nil {
		return nil, fmt.Errorf("read back the audit log: %w", err)
	}
	inserted, plan, err := planFromRows(cols["lessee_periods"], periods, changes, runChunkSize(cfg))
	if err != nil {
		return nil, fmt.Errorf("write floor: %w", err)
	}
	wf.Periods, wf.Results, wf.Audit, wf.Updates = len(inserted), counts["row_results"], counts["audit_log"], countEnds(plan)

	step("write floor: %d periods, %d results, %d audit entries, %d end dates in one transaction", wf.Periods, wf.Results, wf.Audit, wf.Updates)
	copyIn := func(path, stmt string) (int, error) {
		fh, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer func() { _ = fh.Close() }() // only read
		tag, err := fc.PgConn().CopyFrom(ctx, bufio.NewReaderSize(fh, 1<<20), stmt)
		if err != nil {
			return 0, err
		}
		return int(tag.RowsAffected()), nil
	}
	timed := func(name string, want int, fn func() (int, error)) error {
		start := time.Now()
		n, err := fn()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if want >= 0 && n != want {
			return fmt.Errorf("%s: %d rows, want %d", name, n, want)
		}
		wf.Steps = append(wf.Steps, FloorStep{Name: name, Rows: n, Wall: time.Since(start)})
		return nil
	}
	start := time.Now()
	tx, err := fc.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Chunk by chunk, as the run wrote them: each chunk ends the periods
	// on file before it opens others, since the exclusion constraint is
	// checked per row.
	var endsWall, opensWall time.Duration
	for _, cw := range plan {
		if len(cw.Ends) > 0 {
			st := time.Now()
			ids, ends := make([]string, len(cw.Ends)), make([]*string, len(cw.Ends))
			for i, e := range cw.Ends {
				ids[i], ends[i] = e.ID, e.End
			}
			tag, err := tx.Exec(ctx, `UPDATE lessee_periods AS p SET end_date = e.end_date
				FROM unnest($1::text[], $2::text[]) AS e(id, end_date) WHERE p.id = e.id`, ids, ends)
			if err != nil {
				return nil, fmt.Errorf("end dates: %w", err)
			}
			if n := int(tag.RowsAffected()); n != len(ids) {
				return nil, fmt.Errorf("end dates: %d of %d periods found", n, len(ids))
			}
			endsWall += time.Since(st)
		}
		if len(cw.Opened) > 0 {
			st := time.Now()
			rows := make([][]any, len(cw.Opened))
			for i, j := range cw.Opened {
				rows[i] = inserted[j]
			}
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"lessee_periods"}, cols["lessee_periods"], pgx.CopyFromRows(rows))
			if err != nil {
				return nil, fmt.Errorf("lessee_periods: %w", err)
			}
			if int(n) != len(rows) {
				return nil, fmt.Errorf("lessee_periods: %d of %d rows", n, len(rows))
			}
			opensWall += time.Since(st)
		}
	}
	wf.Steps = append(wf.Steps,
		FloorStep{Name: "end dates: UPDATE ... FROM unnest, per chunk", Rows: wf.Updates, Wall: endsWall},
		FloorStep{Name: "lessee_periods: COPY, per chunk", Rows: wf.Periods, Wall: opensWall})
	for _, t := range floorTables[1:] {
		stmt := "COPY " + t + " (" + strings.Join(cols[t], ", ") + ") FROM STDIN (FORMAT binary)"
		if err := timed(t+": COPY", counts[t], func() (int, error) { return copyIn(files[t], stmt) }); err != nil {
			return nil, err
		}
	}
	if err := timed("commit", -1, func() (int, error) { return 0, tx.Commit(ctx) }); err != nil {
		return nil, err
	}
	wf.Wall = time.Since(start)
	return wf, nil
}

// runChunkSize is the rows per chunk the run's serve applied.
func runChunkSize(cfg Config) int {
	if cfg.ChunkSize > 0 {
		return cfg.ChunkSize
	}
	return worker.DefaultChunkSize(cfg.SQLite)
}

// sqliteWriteFloor: the run's rows are read into memory from its SQLite
// file (the floor's attached to tell periods apart), then inserted into the
// floor's file with prepared multi-row INSERTs, with the store's own
// connection settings (sqlstore.SQLiteDSN).
func sqliteWriteFloor(ctx context.Context, cfg Config, b *backend, f files, run *EndToEnd, step func(string, ...any)) (*WriteFloor, error) {
	step("write floor: importing the registry into a fresh SQLite file")
	dir, err := os.MkdirTemp(f.dir, "floor-*")
	if err != nil {
		return nil, err
	}
	wf := &WriteFloor{Measure: Measure{Rows: run.Rows}}
	path := filepath.Join(dir, "floor.db")
	if cfg.Keep {
		wf.DatabaseURL = "sqlite:" + path
	} else {
		defer os.RemoveAll(dir)
	}
	s, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		return nil, err
	}
	err = s.Migrate(ctx)
	if err == nil {
		_, err = s.Import(ctx, f.regDir, sqlstore.ImportOptions{})
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", sqlstore.SQLiteDSN(path))
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }() // committed or measured already
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return nil, err
	}
	wf.Database = "SQLite " + version + " (embedded)"

	step("write floor: reading back what the run wrote")
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }() // read only
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS f`, path); err != nil {
		return nil, err
	}
	cols := map[string][]string{}
	for _, t := range floorTables {
		rows, err := conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, t)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return nil, err
			}
			cols[t] = append(cols[t], c)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	queries, changesQuery := floorQueries(cols, "f.", run.JobID)
	data := map[string][][]any{}
	for _, t := range floorTables {
		if data[t], err = readAll(ctx, conn, queries[t], len(cols[t])); err != nil {
			return nil, fmt.Errorf("read back %s: %w", t, err)
		}
	}
	changes, err := readAll(ctx, conn, changesQuery, 4)
	if err != nil {
		return nil, fmt.Errorf("read back the audit log: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `DETACH DATABASE f`); err != nil {
		return nil, err
	}
	inserted, plan, err := planFromRows(cols["lessee_periods"], data["lessee_periods"], changes, runChunkSize(cfg))
	if err != nil {
		return nil, fmt.Errorf("write floor: %w", err)
	}
	wf.Periods, wf.Results, wf.Audit, wf.Updates = len(inserted), len(data["row_results"]), len(data["audit_log"]), countEnds(plan)

	step("write floor: %d periods, %d results, %d audit entries, %d end dates in one transaction", wf.Periods, wf.Results, wf.Audit, wf.Updates)
	start := time.Now()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	upd, err := tx.PrepareContext(ctx, `UPDATE lessee_periods SET end_date = ? WHERE id = ?`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = upd.Close() }() // the transaction ends it anyway
	// Chunk by chunk, as the run wrote them.
	var endsWall, opensWall time.Duration
	for _, cw := range plan {
		st := time.Now()
		for _, e := range cw.Ends {
			res, err := upd.ExecContext(ctx, endValue(e.End), e.ID)
			if err != nil {
				return nil, fmt.Errorf("end dates: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return nil, fmt.Errorf("end dates: period %v: %d updated (%v)", e.ID, n, err)
			}
		}
		endsWall += time.Since(st)
		st = time.Now()
		rows := make([][]any, len(cw.Opened))
		for i, j := range cw.Opened {
			rows[i] = inserted[j]
		}
		if err := sqliteInsertAll(ctx, tx, "lessee_periods", cols["lessee_periods"], rows); err != nil {
			return nil, fmt.Errorf("lessee_periods: %w", err)
		}
		opensWall += time.Since(st)
	}
	wf.Steps = append(wf.Steps,
		FloorStep{Name: "end dates: prepared UPDATE per period, per chunk", Rows: wf.Updates, Wall: endsWall},
		FloorStep{Name: "lessee_periods: multi-row INSERT, per chunk", Rows: wf.Periods, Wall: opensWall})
	for _, t := range floorTables[1:] {
		st := time.Now()
		if err := sqliteInsertAll(ctx, tx, t, cols[t], data[t]); err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		wf.Steps = append(wf.Steps, FloorStep{Name: t + ": multi-row INSERT", Rows: len(data[t]), Wall: time.Since(st)})
	}
	st := time.Now()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	wf.Steps = append(wf.Steps, FloorStep{Name: "commit", Wall: time.Since(st)})
	wf.Wall = time.Since(start)
	return wf, nil
}

// readAll reads every row of query, of n columns, into memory.
func readAll(ctx context.Context, conn *sql.Conn, query string, n int) ([][]any, error) {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// sqliteMaxParams is the most parameters a multi-row INSERT binds (SQLite's
// limit is 32766).
const sqliteMaxParams = 32000

// sqliteInsertAll inserts rows with a prepared statement of as many rows as
// the parameter limit allows (at most 500), and one more for the rest.
func sqliteInsertAll(ctx context.Context, tx *sql.Tx, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	per := min(500, sqliteMaxParams/len(cols))
	statement := func(n int) string {
		one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
		return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
	}
	var full *sql.Stmt
	args := make([]any, 0, per*len(cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		var err error
		if n == per {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, statement(per)); err != nil {
					return err
				}
				defer func() { _ = full.Close() }() // the transaction ends it anyway
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, statement(n), args...)
		}
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}
