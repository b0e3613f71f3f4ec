package schemas

import (
	"context"
	"database/sql"
	"fmt"

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
	}
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
