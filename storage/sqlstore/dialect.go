package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/fleetreg/lessee"
)

// dialect is what the store does differently per database, chosen once in
// Open. Everything else runs the same SQL on both. PostgreSQL is a server:
// a round trip per statement costs, so it gets COPY and pgx's own scanning,
// which database/sql lacks. SQLite is in-process: a statement costs no
// round trip, so it gets plain multi-row statements.
type dialect interface {
	// name returns DialectSQLite or DialectPostgres.
	name() string
	// forUpdate returns the suffix that makes a SELECT lock its rows.
	forUpdate() string
	// insert writes rows, one value per column each, into table; rows is
	// not empty.
	insert(ctx context.Context, w *chunkTx, table string, cols []string, rows [][]any) error
	// loadVehicles locks the vehicles named by VIN or registration number,
	// in VIN order, and loads them with the lessee periods that can matter
	// to the chunk (see lessee.Keys.Since) and, read in the locking
	// statement, the authority tables' generation (0 when no vehicle was
	// found).
	loadVehicles(ctx context.Context, w *chunkTx, keys lessee.Keys) ([]vehicleRow, []periodRow, int64, error)
	// closePeriods sets the end date of each period of batch and calls
	// found with how many it found by id on the vehicle named (at the
	// pipeline's flush when the chunk has one).
	closePeriods(ctx context.Context, w *chunkTx, batch []lessee.PeriodWrite, found func(n int) error) error
	// resultPage appends to page the results of a job after row index
	// after, at most resultPage of them, in row order.
	resultPage(ctx context.Context, db *sqlx.DB, jobID string, after int, page []resultRow) ([]resultRow, error)
	// close releases what the dialect keeps open, before the database
	// closes.
	close() error
}

// The periods queries take pairs of a VIN and the date its periods are
// needed from. The COALESCE is the expression of lessee_periods_vin_end_idx
// (an open period's end reads as the last date there is), spelt exactly so
// for the index to serve the queries.
const (
	periodsQueryPG = `SELECT p.id, p.vin, p.lessee_id, p.lessee_name, p.start_date, COALESCE(p.end_date, '')
		FROM unnest($1::text[], $2::text[]) AS k(vin, since)
		JOIN lessee_periods AS p ON p.vin = k.vin AND COALESCE(p.end_date, '9999-12-31') >= k.since`
	periodsSelectSQLite = `SELECT p.id, p.vin, p.lessee_id, p.lessee_name, p.start_date, p.end_date
		FROM k JOIN lessee_periods AS p ON p.vin = k.vin AND COALESCE(p.end_date, '9999-12-31') >= k.since`
)

// postgresDialect runs the chunk's bulk reads and writes through pgx on the
// connection that holds the transaction.
type postgresDialect struct{}

var _ dialect = (*postgresDialect)(nil)

func (*postgresDialect) name() string      { return DialectPostgres }
func (*postgresDialect) close() error      { return nil }
func (*postgresDialect) forUpdate() string { return " FOR UPDATE" }

// withPgx runs fn with the pgx connection under conn. database/sql has no
// COPY and scans generically; pgx does both well, and its connection is
// inside the transaction, which database/sql leaves idle between
// statements.
func withPgx(conn *sqlx.Conn, fn func(*pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, not pgx", dc)
		}
		return fn(pc.Conn())
	})
}

// copyFrom is the fewest rows written with COPY: below it, COPY's extra
// round trips cost more than a multi-row INSERT (a single API change
// writes one period and one audit entry).
const copyFrom = 8

// insert copies rows in with COPY, or inserts a few with one statement.
func (*postgresDialect) insert(ctx context.Context, w *chunkTx, table string, cols []string, rows [][]any) error {
	if len(rows) < copyFrom {
		head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ")"
		if w.pipeline != nil {
			query, args := valuesStatement(head, "", rows)
			w.pipeline.Queue(sqlx.Rebind(sqlx.DOLLAR, query), args...)
			return nil
		}
		return insertRows(ctx, w.tx, head, "", rows)
	}
	return withPgx(w.conn, func(c *pgx.Conn) error {
		n, err := c.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", table, err)
		}
		if n != int64(len(rows)) {
			return fmt.Errorf("copy into %s: %d of %d rows", table, n, len(rows))
		}
		return nil
	})
}

// lockVehiclesPG locks the vehicles named by VIN ($1) or registration
// number ($2) in VIN order and returns them with the authority's generation
// (see authority.go).
// Not "vin = ANY($1) OR registration_number = ANY($2)": PostgreSQL answers
// that OR with a scan of every vehicle. FOR UPDATE OF: the generation's row
// is read, never locked. With ORDER BY, FOR UPDATE locks rows in sorted
// order, so two chunks locking the same vehicles queue instead of
// deadlocking.
const lockVehiclesPG = `SELECT v.vin, v.registration_number, v.owner_orgnr, v.owner_since, g.generation
	FROM vehicles AS v CROSS JOIN authority_generation AS g
	WHERE v.vin IN (SELECT unnest($1::text[])
		UNION ALL SELECT vin FROM vehicles WHERE registration_number = ANY($2::text[]))
	ORDER BY v.vin FOR UPDATE OF v`

// loadVehicles reads through pgx itself: these are the chunk's largest
// reads, and database/sql's generic scanning cost more than the queries.
func (*postgresDialect) loadVehicles(ctx context.Context, w *chunkTx, keys lessee.Keys) ([]vehicleRow, []periodRow, int64, error) {
	vins, regs := dedupe(keys.VINs), dedupe(keys.RegNumbers)
	if len(vins)+len(regs) == 0 {
		return nil, nil, 0, nil
	}
	var vehicles []vehicleRow
	var periods []periodRow
	var generation int64
	err := withPgx(w.conn, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, lockVehiclesPG, vins, regs)
		if err != nil {
			return fmt.Errorf("load vehicles: %w", err)
		}
		var v vehicleRow
		_, err = pgx.ForEachRow(rows, []any{&v.VIN, &v.RegistrationNumber, &v.Owner, &v.OwnerSince, &generation}, func() error {
			vehicles = append(vehicles, v)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load vehicles: %w", err)
		}
		// A statement of its own, after the lock: under READ COMMITTED a
		// statement reads the snapshot of its start, so periods joined
		// into the locking statement could predate a chunk that held the
		// lock and committed meanwhile (tried for single API changes: the
		// API bench found overlapping periods). Sending both statements in
		// one round trip (the second by the names asked for, not the VINs
		// found) was also tried: no faster, the query being costlier.
		found, since := historyKeys(keys, vehicles)
		rows, err = c.Query(ctx, periodsQueryPG, found, since)
		if err != nil {
			return fmt.Errorf("load lessee periods: %w", err)
		}
		var p periodRow
		var end string
		_, err = pgx.ForEachRow(rows, []any{&p.ID, &p.VIN, &p.LesseeID, &p.LesseeName, &p.Start, &end}, func() error {
			p.End = sql.NullString{String: end, Valid: end != ""}
			periods = append(periods, p)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load lessee periods: %w", err)
		}
		return nil
	})
	return vehicles, periods, generation, err
}

// closePeriods updates a batch in one statement over arrays, and counts the
// periods updated on the vehicle named.
func (*postgresDialect) closePeriods(ctx context.Context, w *chunkTx, batch []lessee.PeriodWrite, found func(n int) error) error {
	ids, vins, ends := make([]string, len(batch)), make([]string, len(batch)), make([]*string, len(batch))
	for i, p := range batch {
		ids[i], vins[i] = p.Period.ID, p.VIN
		if end := string(p.Period.End); end != "" {
			ends[i] = &end
		}
	}
	// Matched on id alone, so that PostgreSQL finds each period by its
	// primary key (given "AND p.vin = v.vin" it chose the VIN index and
	// read the vehicle's whole history per row); the vehicle is checked on
	// the rows returned instead.
	const update = `UPDATE lessee_periods AS p SET end_date = v.end_date
		FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, vin, end_date)
		WHERE p.id = v.id
		RETURNING p.vin = v.vin`
	if w.pipeline != nil {
		w.pipeline.Queue(update, ids, vins, ends).Query(func(rows pgx.Rows) error {
			n := 0
			var sameVehicle bool
			if _, err := pgx.ForEachRow(rows, []any{&sameVehicle}, func() error {
				if sameVehicle {
					n++
				}
				return nil
			}); err != nil {
				return err
			}
			return found(n)
		})
		return nil
	}
	rows, err := w.tx.QueryContext(ctx, update, ids, vins, ends)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var sameVehicle bool
		if err := rows.Scan(&sameVehicle); err != nil {
			return err
		}
		if sameVehicle {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return found(n)
}

// resultPage reads through pgx, whose scanning into strings costs a
// fraction of database/sql's generic path.
func (*postgresDialect) resultPage(ctx context.Context, db *sqlx.DB, jobID string, after int, page []resultRow) ([]resultRow, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return page, err
	}
	defer conn.Close()
	err = withPgx(conn, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, db.Rebind(resultsQuery), jobID, after, resultPage)
		if err != nil {
			return err
		}
		var r resultRow
		_, err = pgx.ForEachRow(rows, []any{&r.Index, &r.Line, &r.Reference, &r.Operation, &r.RegistrationNumber,
			&r.VIN, &r.Lessee, &r.Status, &r.Code, &r.Message, &r.ChangeID}, func() error {
			page = append(page, r)
			return nil
		})
		return err
	})
	return page, err
}

// sqliteDialect writes with multi-row statements. SQLite has no row locks
// and needs none: a write transaction holds the database from BEGIN
// IMMEDIATE. A statement costs no round trip but its compilation: the
// chunk's statements are of fixed text (lists go in as one JSON array,
// rows in batches of fixed sizes), prepared once and reused by every
// chunk; compiling each chunk's own statements was a tenth of the apply's
// CPU time.
type sqliteDialect struct {
	stmts stmtCache
}

var _ dialect = (*sqliteDialect)(nil)

func (*sqliteDialect) name() string      { return DialectSQLite }
func (*sqliteDialect) forUpdate() string { return "" }
func (d *sqliteDialect) close() error    { return d.stmts.close() }

// sqliteBatches are the row counts of the prepared multi-row INSERTs: as
// many rows go in batches of the first as fit, the rest in the next.
var sqliteBatches = []int{256, 16, 1}

func (d *sqliteDialect) insert(ctx context.Context, w *chunkTx, table string, cols []string, rows [][]any) error {
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ")"
	args := make([]any, 0, min(len(rows), sqliteBatches[0])*len(cols))
	for _, n := range sqliteBatches {
		for len(rows) >= n {
			st, err := d.stmts.in(ctx, w.tx, stmtKey{head, n}, func() string {
				query, _ := valuesStatement(head, "", rows[:n]) // the text depends only on the shape
				return query
			})
			if err != nil {
				return err
			}
			args = args[:0]
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	return nil
}

// The chunk's reads on SQLite, each a fixed text with its list as one
// JSON array parameter.
const (
	vehiclesByVINSQLite = `SELECT vin, registration_number, owner_orgnr, owner_since FROM vehicles
		WHERE vin IN (SELECT value FROM json_each(?))`
	vehiclesByRegSQLite = `SELECT vin, registration_number, owner_orgnr, owner_since FROM vehicles
		WHERE registration_number IN (SELECT value FROM json_each(?))`
	// The pairs of a VIN and the date its periods are needed from, as
	// [[vin, since], ...].
	periodsQuerySQLite = `WITH k(vin, since) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)) ` +
		periodsSelectSQLite
	// Periods given an end date, as [[id, vin, end_date or null], ...],
	// matched by id and vehicle.
	closePeriodsSQLite = `WITH v(id, vin, end_date) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?))
		UPDATE lessee_periods SET end_date = v.end_date FROM v
		WHERE lessee_periods.id = v.id AND lessee_periods.vin = v.vin`
)

func (d *sqliteDialect) loadVehicles(ctx context.Context, w *chunkTx, keys lessee.Keys) ([]vehicleRow, []periodRow, int64, error) {
	var vehicles []vehicleRow
	for _, q := range []struct {
		query string
		keys  []string
	}{{vehiclesByVINSQLite, keys.VINs}, {vehiclesByRegSQLite, keys.RegNumbers}} {
		if len(q.keys) == 0 {
			continue
		}
		if err := selectJSON(ctx, d, w, &vehicles, q.query, dedupe(q.keys)); err != nil {
			return nil, nil, 0, fmt.Errorf("load vehicles: %w", err)
		}
	}
	// The write transaction is immediate: nothing changes under it, and
	// the generation may be read in a statement of its own.
	var generation int64
	if len(vehicles) > 0 {
		if err := w.tx.GetContext(ctx, &generation, `SELECT generation FROM authority_generation`); err != nil {
			return nil, nil, 0, fmt.Errorf("load vehicles: authority generation: %w", err)
		}
	}
	slices.SortFunc(vehicles, func(a, b vehicleRow) int { return strings.Compare(a.VIN, b.VIN) })
	vehicles = slices.CompactFunc(vehicles, func(a, b vehicleRow) bool { return a.VIN == b.VIN })
	vins, since := historyKeys(keys, vehicles)
	if len(vins) == 0 {
		return vehicles, nil, generation, nil
	}
	pairs := make([][2]string, len(vins))
	for i := range vins {
		pairs[i] = [2]string{vins[i], since[i]}
	}
	var periods []periodRow
	if err := selectJSON(ctx, d, w, &periods, periodsQuerySQLite, pairs); err != nil {
		return nil, nil, 0, fmt.Errorf("load lessee periods: %w", err)
	}
	return vehicles, periods, generation, nil
}

// selectJSON runs a prepared query whose one parameter is list as a JSON
// array and appends its rows to dest.
func selectJSON[T any](ctx context.Context, d *sqliteDialect, w *chunkTx, dest *[]T, query string, list any) error {
	st, arg, err := d.jsonStmt(ctx, w, query, list)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, arg)
	if err != nil {
		return err
	}
	var part []T // StructScan empties the slice it fills
	if err := sqlx.StructScan(rows, &part); err != nil {
		return err
	}
	*dest = append(*dest, part...)
	return nil
}

// jsonStmt returns the prepared statement of query, whose one parameter is
// a JSON array, and list as that array.
func (d *sqliteDialect) jsonStmt(ctx context.Context, w *chunkTx, query string, list any) (*sql.Stmt, string, error) {
	b, err := json.Marshal(list)
	if err != nil {
		return nil, "", err
	}
	st, err := d.stmts.in(ctx, w.tx, stmtKey{query, 0}, func() string { return query })
	return st, string(b), err
}

// closePeriods updates a batch in one prepared statement over a JSON array.
func (d *sqliteDialect) closePeriods(ctx context.Context, w *chunkTx, batch []lessee.PeriodWrite, found func(n int) error) error {
	list := make([][3]*string, len(batch))
	for i, p := range batch {
		id, vin := p.Period.ID, p.VIN
		list[i] = [3]*string{&id, &vin, nil}
		if end := string(p.Period.End); end != "" {
			list[i][2] = &end
		}
	}
	st, arg, err := d.jsonStmt(ctx, w, closePeriodsSQLite, list)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, arg)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	return found(int(n))
}

// stmtKey names a cached statement: its text, or the head of a multi-row
// INSERT and its row count.
type stmtKey struct {
	text string
	rows int
}

// stmtCache keeps statements prepared on the database, so that every
// transaction reuses them (database/sql prepares each once per connection).
type stmtCache struct {
	db *sqlx.DB
	// perTransaction prepares every statement in its transaction instead:
	// on a database of one connection (":memory:") the transaction holds
	// it, and a statement prepared on the database would wait forever.
	perTransaction bool
	mu             sync.Mutex
	m              map[stmtKey]*sql.Stmt
}

// in returns the statement of key, prepared from text() the first time,
// for use in tx.
func (c *stmtCache) in(ctx context.Context, tx *sqlx.Tx, key stmtKey, text func() string) (*sql.Stmt, error) {
	if c.perTransaction {
		return tx.PrepareContext(ctx, text())
	}
	c.mu.Lock()
	st, ok := c.m[key]
	if !ok {
		var err error
		if st, err = c.db.PrepareContext(ctx, text()); err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		if c.m == nil {
			c.m = map[stmtKey]*sql.Stmt{}
		}
		c.m[key] = st
	}
	c.mu.Unlock()
	return tx.StmtContext(ctx, st), nil
}

// close closes the cached statements.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, k)
	}
	return errors.Join(errs...)
}

func (*sqliteDialect) resultPage(ctx context.Context, db *sqlx.DB, jobID string, after int, page []resultRow) ([]resultRow, error) {
	err := db.SelectContext(ctx, &page, db.Rebind(resultsQuery), jobID, after, resultPage)
	return page, err
}
