package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestNoOverlapConstraint: on PostgreSQL the database itself refuses a
// lessee period that overlaps another of the same vehicle, inserted or
// updated behind the code's back; periods that only touch (one
// ends the day the next begins), or belong to other vehicles, are fine.
func TestNoOverlapConstraint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlstoretest.Postgres(t)
	importRegistry(t, s) // vin1: open period of person since 2023-01-01
	insert := func(id, vin, start string, end any) error {
		return s.Exec(ctx, `INSERT INTO lessee_periods (id, vin, lessee_id, lessee_name, start_date, end_date)
			VALUES (?, ?, ?, '', ?, ?)`, id, vin, person, start, end)
	}
	for _, tc := range []struct {
		name, vin, start string
		end              any
		ok               bool
	}{
		{"before, ending the day the open one starts", vin1, "2022-01-01", "2023-01-01", true},
		{"before, running into it", vin1, "2022-06-01", "2023-01-02", false},
		{"inside the open period", vin1, "2024-01-01", "2024-02-01", false},
		{"open, after it starts", vin1, "2025-01-01", nil, false},
		{"another vehicle", vin2, "2024-01-01", nil, true},
	} {
		err := insert("x-"+strings.ReplaceAll(tc.name, " ", "-"), tc.vin, tc.start, tc.end)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "lessee_periods_no_overlap")) {
			t.Errorf("%s: err = %v, want the exclusion constraint", tc.name, err)
		}
	}
	// An update that makes two periods overlap is refused too.
	if err := s.Exec(ctx, `UPDATE lessee_periods SET end_date = '2023-06-01' WHERE id = 'x-before,-ending-the-day-the-open-one-starts'`); err == nil ||
		!strings.Contains(err.Error(), "lessee_periods_no_overlap") {
		t.Errorf("overlapping update: err = %v", err)
	}
}

// TestNoOverlapMigrationReportsOverlaps: a database whose periods already
// overlap is not migrated blindly: the migration names every overlapping
// pair and changes nothing; once they are fixed, it migrates.
func TestNoOverlapMigrationReportsOverlaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlstoretest.Postgres(t)
	if err := s.Exec(ctx, `ALTER TABLE lessee_periods DROP CONSTRAINT lessee_periods_no_overlap`); err != nil {
		t.Fatal(err)
	}
	// Back to before version 10: undo the migrations after it as well
	// (11: the rejected-rows indexes), which goose would not run out of
	// order.
	if err := s.Exec(ctx, `DROP INDEX row_results_rejected_idx, row_results_rejected_code_idx`); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, `DELETE FROM goose_db_version WHERE version_id >= 10`); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, `DROP FUNCTION lessee_day(text)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, `INSERT INTO lessee_periods (id, vin, lessee_id, lessee_name, start_date, end_date) VALUES
		('p1', 'VIN-A', 'L1', '', '2024-01-01', NULL),
		('p2', 'VIN-A', 'L2', '', '2024-06-01', '2024-07-01'),
		('p3', 'VIN-B', 'L3', '', '2024-01-01', '2024-02-01'),
		('p4', 'VIN-B', 'L4', '', '2024-02-01', NULL),
		('p5', 'VIN-C', 'L5', '', '2024-01-01', '2024-04-01'),
		('p6', 'VIN-C', 'L6', '', '2024-03-01', '2024-05-01')`); err != nil {
		t.Fatal(err)
	}
	err := s.Migrate(ctx)
	if err == nil {
		t.Fatal("migrated although periods overlap")
	}
	msg := err.Error()
	for _, want := range []string{"vehicle VIN-A: period p1 (2024-01-01 to open) and period p2 (2024-06-01 to 2024-07-01)",
		"vehicle VIN-C: period p5 (2024-01-01 to 2024-04-01) and period p6 (2024-03-01 to 2024-05-01)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the report lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "VIN-B") {
		t.Errorf("periods that only touch were reported:\n%s", msg)
	}
	if err := s.Exec(ctx, `DELETE FROM lessee_periods WHERE id IN ('p2', 'p5')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("after fixing the periods: %v", err)
	}
	if err := s.Exec(ctx, `INSERT INTO lessee_periods (id, vin, lessee_id, lessee_name, start_date, end_date)
		VALUES ('p7', 'VIN-A', 'L7', '', '2025-01-01', NULL)`); err == nil || !strings.Contains(err.Error(), "lessee_periods_no_overlap") {
		t.Errorf("after migrating, an overlapping insert: %v", err)
	}
}

// TestImportRefusesOverlappingPeriod: a registry import whose vehicles.csv
// gives a vehicle a lessee period overlapping the one on file is refused
// whole on PostgreSQL, with a message that says what to do.
func TestImportRefusesOverlappingPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlstoretest.Postgres(t)
	importRegistry(t, s)
	dir := writeFiles(t, map[string]string{
		"vehicles.csv": "registration_number,vin,owner_orgnr,owner_since,lessee_id,lessee_start,lessee_end\n" +
			"EL 12345,WVWZZZ1JZXW000001,910000004,2020-01-01,01019010046,2024-01-01,\n",
	})
	_, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "would overlap another period of the same vehicle") {
		t.Fatalf("err = %v, want the overlap explained", err)
	}
	if got := vehicle(t, s, vin1).Periods; len(got) != 1 {
		t.Errorf("periods after the refused import: %+v", got)
	}
}
