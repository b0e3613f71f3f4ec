package schemas

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"
)

// GoMigrations returns the migrations whose SQL differs between SQLite and
// PostgreSQL (triggers, constraints only one of them has), for goose's
// provider next to FS. Their versions are not used by any file in FS.
func GoMigrations(postgres bool) []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(7,
			&goose.GoFunc{RunTx: execAll(authorityGenerationUp(postgres))},
			&goose.GoFunc{RunTx: execAll(authorityGenerationDown(postgres))}),
		goose.NewGoMigration(10,
			&goose.GoFunc{RunTx: noOverlapUp(postgres)},
			&goose.GoFunc{RunTx: execAll(noOverlapDown(postgres))}),
		goose.NewGoMigration(12,
			&goose.GoFunc{RunTx: execAll(hashedOverlapUp(postgres))},
			&goose.GoFunc{RunTx: execAll(hashedOverlapDown(postgres))}),
	}
}

// hashedOverlapUp keys lessee_periods_no_overlap on a 64-bit hash of the
// VIN before the VIN itself (version 12). The constraint is the same: two
// periods conflict only if their VINs are equal (so are their hashes; and
// text equality is byte equality in every deterministic collation, "C"
// included) and their days overlap. Its index is not: btree_gist's text
// keys cluster badly, so every check of a new or ended period searched
// much of the index, and the planner answered the chunks' periods query
// (vin = ...) from it too instead of lessee_periods_vin_end_idx. Measured
// in 'lessee bench' (200,000 rows, 100,000 vehicles): the period writes
// and that query were nearly all of the apply stage's database time. On
// the hash, a fixed-width integer, inserts and checks find their vehicle
// in a few pages; the VIN under COLLATE "C" is an expression no query's
// "vin = ..." matches, so lookups go to the B-tree.
func hashedOverlapUp(postgres bool) []string {
	if !postgres {
		return nil
	}
	return []string{
		`ALTER TABLE lessee_periods DROP CONSTRAINT lessee_periods_no_overlap`,
		`ALTER TABLE lessee_periods ADD CONSTRAINT lessee_periods_no_overlap
			EXCLUDE USING gist (hashtextextended(vin, 0) WITH =, (vin COLLATE "C") WITH =,
				daterange(lessee_day(start_date), lessee_day(end_date)) WITH &&)`,
	}
}

func hashedOverlapDown(postgres bool) []string {
	if !postgres {
		return nil
	}
	return []string{
		`ALTER TABLE lessee_periods DROP CONSTRAINT lessee_periods_no_overlap`,
		`ALTER TABLE lessee_periods ADD CONSTRAINT lessee_periods_no_overlap
			EXCLUDE USING gist (vin WITH =, daterange(lessee_day(start_date), lessee_day(end_date)) WITH &&)`,
	}
}

// maxOverlapsReported is how many overlapping pairs a refused migration
// names.
const maxOverlapsReported = 20

// overlapsQuery finds pairs of lessee periods of one vehicle that share a
// day: a period runs from its start up to, not including, its end (none:
// open-ended). A CHECK keeps every end after its start.
const overlapsQuery = `SELECT a.vin, a.id, a.start_date, COALESCE(a.end_date, ''), b.id, b.start_date, COALESCE(b.end_date, '')
	FROM lessee_periods AS a JOIN lessee_periods AS b ON a.vin = b.vin AND a.id < b.id
	WHERE a.start_date < COALESCE(b.end_date, '9999-12-31') AND b.start_date < COALESCE(a.end_date, '9999-12-31')
		AND a.start_date < COALESCE(a.end_date, '9999-12-31') AND b.start_date < COALESCE(b.end_date, '9999-12-31')
	ORDER BY a.vin, a.start_date, b.start_date
	LIMIT 21` // maxOverlapsReported + 1

// noOverlapUp makes overlapping lessee periods impossible on PostgreSQL
// even if the code were wrong: an exclusion constraint over the vehicle
// and the period's days, checked per statement (a chunk ends the periods
// on file before it inserts new ones; a deferred check cost a quarter of
// an API change's throughput). It first looks for
// periods that already overlap and, finding any, refuses with the list
// instead of failing on the first (version 10). SQLite has no such
// constraint; the rules in package validate keep periods apart there.
func noOverlapUp(postgres bool) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		if !postgres {
			return nil
		}
		rows, err := tx.QueryContext(ctx, overlapsQuery)
		if err != nil {
			return fmt.Errorf("look for overlapping lessee periods: %w", err)
		}
		defer rows.Close()
		var found []string
		for rows.Next() {
			var vin, aID, aStart, aEnd, bID, bStart, bEnd string
			if err := rows.Scan(&vin, &aID, &aStart, &aEnd, &bID, &bStart, &bEnd); err != nil {
				return fmt.Errorf("look for overlapping lessee periods: %w", err)
			}
			found = append(found, fmt.Sprintf("vehicle %s: period %s (%s to %s) and period %s (%s to %s)",
				vin, aID, aStart, orOpen(aEnd), bID, bStart, orOpen(bEnd)))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("look for overlapping lessee periods: %w", err)
		}
		if len(found) > 0 {
			more := ""
			if len(found) > maxOverlapsReported {
				found, more = found[:maxOverlapsReported], "\n  ... and more"
			}
			return fmt.Errorf("lessee periods on file overlap, so they cannot be made impossible to overlap; end or remove one period of each pair (UPDATE lessee_periods SET end_date = ...), then migrate again:\n  %s%s",
				strings.Join(found, "\n  "), more)
		}
		return execAll(noOverlapStatements)(ctx, tx)
	}
}

// noOverlapStatements add the constraint. btree_gist lets one GiST index
// compare the VIN (text) with = beside the date range. It is one per
// database, so it goes to schema public (not the schema being migrated,
// which may be dropped with the extension in it), under a lock that lets
// two schemas' migrations create it one after the other. lessee_day reads
// the stored 'YYYY-MM-DD' text as a date without depending on DateStyle,
// so that it may be used in an index.
var noOverlapStatements = []string{
	`SELECT pg_advisory_xact_lock(hashtext('lessee: create extension btree_gist'))`,
	`CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public`,
	`CREATE FUNCTION lessee_day(d text) RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
		$$ SELECT make_date(substr(d, 1, 4)::int, substr(d, 6, 2)::int, substr(d, 9, 2)::int) $$`,
	`ALTER TABLE lessee_periods ADD CONSTRAINT lessee_periods_no_overlap
		EXCLUDE USING gist (vin WITH =, daterange(lessee_day(start_date), lessee_day(end_date)) WITH &&)`,
}

func noOverlapDown(postgres bool) []string {
	if !postgres {
		return nil
	}
	return []string{
		`ALTER TABLE lessee_periods DROP CONSTRAINT lessee_periods_no_overlap`,
		`DROP FUNCTION lessee_day(text)`,
	}
}

func orOpen(end string) string {
	if end == "" {
		return "open"
	}
	return end
}

// authorityTables are the tables the registry's authority is read from: who
// is an enterprise and a fleet owner, who accepted which terms, who
// delegated to whom.
var authorityTables = []string{"enterprises", "terms_acceptances", "delegations"}

// authorityGenerationUp creates authority_generation, one counter that every
// committed change to the authority tables raises, by trigger, whoever
// makes it (an import, an operator's psql). A process may then keep what
// it read of the authority for as long as the counter it reads in the same
// transaction has not moved: as fresh as reading the tables, without the
// reads (version 7).
func authorityGenerationUp(postgres bool) []string {
	stmts := []string{
		`CREATE TABLE authority_generation (
			id         INTEGER PRIMARY KEY CHECK (id = 1),
			generation BIGINT NOT NULL
		)`,
		`INSERT INTO authority_generation (id, generation) VALUES (1, 1)`,
	}
	if postgres {
		// One statement-level trigger per table: a bulk import raises the
		// counter once per statement, and TRUNCATE is covered too.
		stmts = append(stmts, `CREATE FUNCTION raise_authority_generation() RETURNS trigger
			LANGUAGE plpgsql AS $$
			BEGIN
				UPDATE authority_generation SET generation = generation + 1 WHERE id = 1;
				RETURN NULL;
			END
			$$`)
		for _, t := range authorityTables {
			stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER %s_raise_authority_generation
				AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
				FOR EACH STATEMENT EXECUTE FUNCTION raise_authority_generation()`, t, t))
		}
		return stmts
	}
	// SQLite has row-level triggers only (and no TRUNCATE).
	for _, t := range authorityTables {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER %s_%s_raise_authority_generation
				AFTER %s ON %s FOR EACH ROW BEGIN
					UPDATE authority_generation SET generation = generation + 1 WHERE id = 1;
				END`, t, op, op, t))
		}
	}
	return stmts
}

func authorityGenerationDown(postgres bool) []string {
	var stmts []string
	for _, t := range authorityTables {
		if postgres {
			stmts = append(stmts, fmt.Sprintf(`DROP TRIGGER %s_raise_authority_generation ON %s`, t, t))
			continue
		}
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, fmt.Sprintf(`DROP TRIGGER %s_%s_raise_authority_generation`, t, op))
		}
	}
	if postgres {
		stmts = append(stmts, `DROP FUNCTION raise_authority_generation()`)
	}
	return append(stmts, `DROP TABLE authority_generation`)
}

// execAll runs stmts in order in the migration's transaction.
func execAll(stmts []string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%.60s: %w", s, err)
			}
		}
		return nil
	}
}
