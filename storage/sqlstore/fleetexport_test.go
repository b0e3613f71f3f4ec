package sqlstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// due returns the orgnrs DueExports finds at now with a quiet period of
// 5 s and a maximum wait of 20 s.
func due(t *testing.T, s *sqlstore.Store, now time.Time) []string {
	t.Helper()
	list, err := s.DueExports(context.Background(), now.Add(-5*time.Second), now.Add(-20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range list {
		out = append(out, d.OrgNr)
	}
	return out
}

func fleetRow(t *testing.T, s *sqlstore.Store, orgnr string) sqlstore.FleetExportRow {
	t.Helper()
	r, found, err := s.FleetExport(context.Background(), orgnr)
	if err != nil || !found {
		t.Fatalf("fleet_exports row of %s: found %v, %v", orgnr, found, err)
	}
	return r
}

func TestFleetExportsDebounce(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		c := newClock(s, time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC))
		importRegistry(t, s)
		// The import changed every fleet it names; only fleet owners'
		// exports are due, and a never-exported fleet at once.
		if got := due(t, s, c.now()); !slices.Equal(got, []string{fleetOwner}) {
			t.Fatalf("due after import: %v, want [%s]", got, fleetOwner)
		}
		if r := fleetRow(t, s, thirdParty); r.Version != 1 {
			t.Errorf("third party's version %d, want 1", r.Version)
		}
		if err := s.ExportDone(ctx, fleetOwner, 1); err != nil {
			t.Fatal(err)
		}
		if got := due(t, s, c.now()); len(got) != 0 {
			t.Fatalf("due after export: %v", got)
		}

		// A change just after an export waits for quiet.
		if err := s.MarkFleetChanged(ctx, fleetOwner); err != nil {
			t.Fatal(err)
		}
		if got := due(t, s, c.now()); len(got) != 0 {
			t.Errorf("due 0 s after a change: %v", got)
		}
		c.t = c.t.Add(6 * time.Second)
		list, err := s.DueExports(ctx, c.now().Add(-5*time.Second), c.now().Add(-20*time.Second))
		if err != nil || len(list) != 1 || list[0] != (sqlstore.DueExport{OrgNr: fleetOwner, Version: 2}) {
			t.Fatalf("due 6 s after a change: %v, %v", list, err)
		}
		if err := s.ExportDone(ctx, fleetOwner, 2); err != nil {
			t.Fatal(err)
		}
		exportedAt := c.t

		// Changes every second: never quiet, so due once the last export
		// is 20 s old.
		for i := 1; i <= 25; i++ {
			c.t = exportedAt.Add(time.Duration(i) * time.Second)
			if err := s.MarkFleetChanged(ctx, fleetOwner); err != nil {
				t.Fatal(err)
			}
			got := due(t, s, c.now())
			if want := i >= 20; (len(got) == 1) != want {
				t.Errorf("%d s after the export, changing every second: due %v, want due %v", i, got, want)
			}
		}
		r := fleetRow(t, s, fleetOwner)
		if r.Version != 27 || r.ExportedVersion != 2 {
			t.Errorf("version %d, exported %d; want 27, 2", r.Version, r.ExportedVersion)
		}
		// A late, older export never lowers what is recorded.
		if err := s.ExportDone(ctx, fleetOwner, 27); err != nil {
			t.Fatal(err)
		}
		if err := s.ExportDone(ctx, fleetOwner, 3); err != nil {
			t.Fatal(err)
		}
		if r := fleetRow(t, s, fleetOwner); r.ExportedVersion != 27 || !r.ExportedAt.Valid {
			t.Errorf("exported version %d (at %v) after a late export of 3, want 27", r.ExportedVersion, r.ExportedAt)
		}
		// Unknown fleets are left alone.
		if err := s.ExportDone(ctx, unknownOrg, 5); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := s.FleetExport(ctx, unknownOrg); found {
			t.Error("ExportDone created a row")
		}
	})
}

func TestMarkFleetsChanged(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		newClock(s, time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC))
		if err := s.MarkFleetsChanged(ctx, []string{lesseeOrg, fleetOwner, fleetOwner, ""}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkFleetsChanged(ctx, []string{fleetOwner}); err != nil {
			t.Fatal(err)
		}
		if r := fleetRow(t, s, fleetOwner); r.Version != 2 || r.ExportedVersion != 0 || r.ExportedAt.Valid {
			t.Errorf("fleet owner: %+v, want version 2, never exported", r)
		}
		a, b := fleetRow(t, s, lesseeOrg), fleetRow(t, s, fleetOwner)
		if a.Version != 1 || !(a.ChangedAt < b.ChangedAt) {
			t.Errorf("rows %+v, %+v", a, b)
		}
	})
}

func TestImportMarksPreviousOwner(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		newClock(s, time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC))
		importRegistry(t, s)
		before := fleetRow(t, s, fleetOwner).Version
		dir := writeFiles(t, map[string]string{
			sqlstore.FileEnterprises: "orgnr,name,fleet_owner\n" + unknownOrg + ",New Owner AS,true\n",
			sqlstore.FileVehicles:    "registration_number,vin,owner_orgnr,owner_since\nCD12345," + vin3 + "," + unknownOrg + ",2026-03-01\n",
		})
		if _, err := s.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := fleetRow(t, s, fleetOwner).Version; got != before+1 {
			t.Errorf("seller's version %d, want %d", got, before+1)
		}
		if got := fleetRow(t, s, unknownOrg).Version; got != 1 {
			t.Errorf("buyer's version %d, want 1", got)
		}
	})
}

func TestExportFleetPeriods(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		// vin2 (AB54321) gets two periods open on the day, with one start:
		// the greater id wins, and the vehicle comes once. PostgreSQL
		// refuses such periods (lessee_periods_no_overlap); the export's
		// rule is for a database without that constraint, so it goes.
		if s.Dialect() == sqlstore.DialectPostgres {
			if err := s.Exec(ctx, `ALTER TABLE lessee_periods DROP CONSTRAINT lessee_periods_no_overlap`); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"p-b", "p-a"} {
			if err := s.Exec(ctx, `INSERT INTO lessee_periods (id, vin, lessee_id, lessee_name, start_date) VALUES (?, ?, ?, ?, ?)`,
				id, vin2, lesseeOrg, "Name "+id, "2026-01-01"); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		err := s.ExportFleet(ctx, fleetOwner, "2026-03-15", func(v lessee.FleetVehicle) error {
			line := v.RegistrationNumber + " " + v.VIN
			if v.Lessee != nil {
				line += " " + v.Lessee.ID + " " + v.Lessee.LesseeName + " " + string(v.Lessee.Start) + "-" + string(v.Lessee.End)
			}
			got = append(got, line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"AB54321 " + vin2 + " p-b Name p-b 2026-01-01-",
			"CD12345 " + vin3, // its period ended in 2022
			"EL12345 " + vin1 + " import-" + vin1 + "-2023-01-01  2023-01-01-",
		}
		if !slices.Equal(got, want) {
			t.Errorf("fleet:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		owners, err := s.FleetOwners(ctx)
		if err != nil || !slices.Equal(owners, []string{fleetOwner}) {
			t.Errorf("FleetOwners = %v, %v", owners, err)
		}
	})
}

// TestExportFleetPlan: indexes can serve the export's query, in
// registration-number order, without a sort of the fleet.
func TestExportFleetPlan(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		plan, err := s.ExportFleetPlan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.Dialect() == sqlstore.DialectPostgres {
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("plan scans a table:\n%s", plan)
			}
			return
		}
		for _, want := range []string{"vehicles_owner_reg_idx", "lessee_periods_vin_end_idx"} {
			if !strings.Contains(plan, want) {
				t.Errorf("plan does not use %s:\n%s", want, plan)
			}
		}
		if strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("plan sorts:\n%s", plan)
		}
	})
}

// TestAgeExports: the first tick of a new day makes every export written
// the day before due, once; an export written that day is left alone.
func TestAgeExports(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		c := newClock(s, time.Date(2026, 3, 15, 22, 0, 0, 0, time.UTC))
		importRegistry(t, s)
		if err := s.ExportDone(ctx, fleetOwner, 1); err != nil {
			t.Fatal(err)
		}
		midnight := time.Date(2026, 3, 15, 23, 0, 0, 0, time.UTC) // 00:00 in Oslo
		if n, err := s.AgeExports(ctx, c.now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("an export written today aged: %d, %v", n, err)
		}
		c.t = midnight.Add(time.Minute)
		if n, err := s.AgeExports(ctx, midnight); err != nil || n != 1 {
			t.Fatalf("after midnight: %d aged (%v), want 1", n, err)
		}
		if got := due(t, s, c.now()); !slices.Equal(got, []string{fleetOwner}) {
			t.Errorf("due after midnight: %v, want [%s]", got, fleetOwner)
		}
		// Other processes' ticks the same day change nothing more.
		if n, err := s.AgeExports(ctx, midnight); err != nil || n != 0 {
			t.Errorf("aged again: %d, %v", n, err)
		}
		if err := s.ExportDone(ctx, fleetOwner, 2); err != nil {
			t.Fatal(err)
		}
		if n, err := s.AgeExports(ctx, midnight); err != nil || n != 0 || len(due(t, s, c.now())) != 0 {
			t.Errorf("after the day's export: %d aged (%v), due %v", n, err, due(t, s, c.now()))
		}
	})
}
