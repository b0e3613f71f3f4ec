package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestImport(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		stats, err := s.Import(ctx, filepath.Join("testdata", "registry"), sqlstore.ImportOptions{})
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		want := sqlstore.ImportStats{Enterprises: 3, Terms: 2, Vehicles: 3, LesseePeriods: 2, Delegations: 2}
		if stats != want {
			t.Errorf("stats = %+v, want %+v", stats, want)
		}
		if empty, err := s.RegistryEmpty(ctx); err != nil || empty {
			t.Errorf("RegistryEmpty = %v, %v; want false", empty, err)
		}

		got := vehicle(t, s, vin1)
		wantV := lessee.Vehicle{
			VIN: vin1, RegistrationNumber: "EL12345", Owner: fleetOwner, OwnerSince: "2020-01-01",
			Periods: []lessee.Period{{ID: "import-" + vin1 + "-2023-01-01", LesseeID: person, Start: "2023-01-01"}},
		}
		if !reflect.DeepEqual(got, wantV) {
			t.Errorf("vehicle 1 = %+v\nwant %+v", got, wantV)
		}
		if got := vehicle(t, s, vin2); got.RegistrationNumber != "AB54321" || len(got.Periods) != 0 {
			t.Errorf("vehicle 2 (lower-case VIN in file) = %+v", got)
		}
		if got := vehicle(t, s, vin3); len(got.Periods) != 1 || got.Periods[0].End != "2022-12-31" {
			t.Errorf("vehicle 3 periods = %+v", got.Periods)
		}
		if _, err := s.Vehicle(ctx, vinMissing); !errors.Is(err, sqlstore.ErrNotFound) {
			t.Errorf("missing vehicle: err = %v, want ErrNotFound", err)
		}

		// What a chunk sees: enterprises, terms and delegations.
		st := stateOf(t, s, lessee.Keys{VINs: []string{vin1}, RegNumbers: []string{"CD12345"}, OrgNrs: []string{fleetOwner, thirdParty}})
		if st.ByReg["EL12345"] != vin1 || st.ByReg["CD12345"] != vin3 || len(st.Vehicles) != 2 {
			t.Errorf("vehicles by VIN or reg = %v", st.ByReg)
		}
		if e := st.Enterprises[fleetOwner]; e == nil || !e.FleetOwner || e.Name != "Fleet AS" {
			t.Errorf("fleet owner = %+v", e)
		}
		if e := st.Enterprises[thirdParty]; e == nil || e.FleetOwner || e.Language != lessee.Norwegian {
			t.Errorf("third party = %+v", e)
		}
		if e := st.Enterprises[fleetOwner]; e.Language != lessee.English {
			t.Errorf("fleet owner language = %q, want en", e.Language)
		}
		wantAt := time.Date(2024, 1, 1, 23, 0, 0, 0, time.UTC) // 2024-01-02 00:00 in Oslo
		if e := st.Enterprises[thirdParty]; len(e.Terms) != 1 || !e.Terms[0].AcceptedAt.Equal(wantAt) ||
			e.Terms[0].Agreement != lessee.AgreementThirdParty {
			t.Errorf("third party terms = %+v", e.Terms)
		}
		if e := st.Enterprises[fleetOwner]; !e.Accepted(lessee.AgreementLesseeAPI, time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("fleet owner terms = %+v", e.Terms)
		}
		dels := st.Delegations[[2]string{fleetOwner, thirdParty}]
		if len(dels) != 2 || dels[0].ValidFrom != "2023-01-01" || dels[0].ValidTo != "2023-12-31" ||
			dels[0].RevokedAt == nil || !dels[0].RevokedAt.Equal(time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)) ||
			dels[1].ValidFrom != "2024-01-01" || dels[1].ValidTo != "" || dels[1].RevokedAt != nil {
			t.Errorf("delegations = %+v", dels)
		}
	})
}

// stateOf returns the state ApplyChunk loads for keys, through an empty chunk.
func stateOf(t *testing.T, s *sqlstore.Store, keys lessee.Keys) *lessee.State {
	t.Helper()
	j := beginJob(t, s, "state-probe-"+strings.Join(keys.VINs, "-"))
	var st *lessee.State
	err := s.ApplyChunk(context.Background(), j.ID, j.RowsDone, keys, func(got *lessee.State) lessee.Decision {
		st = got
		return lessee.Decision{}
	})
	if err != nil {
		t.Fatalf("apply empty chunk: %v", err)
	}
	return st
}

func TestImportErrBadLines(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		_, err := s.Import(ctx, filepath.Join("testdata", "bad"), sqlstore.ImportOptions{})
		var ie *sqlstore.ImportError
		if !errors.As(err, &ie) {
			t.Fatalf("err = %v, want *ImportError", err)
		}
		type at struct {
			file string
			line int
			word string // a word the message must contain
		}
		want := []at{
			{"enterprises.csv", 3, "check digit"},
			{"enterprises.csv", 4, "name is empty"},
			{"enterprises.csv", 4, "fleet_owner"},
			{"terms.csv", 2, "accepted_at"},
			{"terms.csv", 3, "CSV syntax"},
			{"vehicles.csv", 2, "lessee_id"},
			{"vehicles.csv", 3, "vin"},
			{"vehicles.csv", 3, "owner_since"},
			{"vehicles.csv", 4, "not a known enterprise"},
			{"delegations.csv", 1, "unknown column \"delegate\""},
			{"delegations.csv", 1, "missing column \"delegate_orgnr\""},
		}
		if ie.Total != len(want) || len(ie.Problems) != len(want) {
			t.Fatalf("got %d problems (total %d):\n%v", len(ie.Problems), ie.Total, ie)
		}
		for i, w := range want {
			p := ie.Problems[i]
			if p.File != w.file || p.Line != w.line || !strings.Contains(p.Message, w.word) {
				t.Errorf("problem %d = %s, want %s line %d containing %q", i, p, w.file, w.line, w.word)
			}
		}
		if strings.Contains(err.Error(), "01019010047") {
			t.Errorf("error reveals a national identity number: %v", err)
		}
		if empty, err := s.RegistryEmpty(ctx); err != nil || !empty {
			t.Errorf("RegistryEmpty after refused import = %v, %v; want true (nothing loaded)", empty, err)
		}
	})
}

func TestImportAllOrNothing(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		// Good enterprise changes, one bad vehicle: nothing of it may land.
		dir := writeFiles(t, map[string]string{
			"enterprises.csv": "orgnr,name,fleet_owner\n910000004,Renamed AS,false\n910000047,New AS,true\n",
			"vehicles.csv":    "registration_number,vin,owner_orgnr,owner_since\nZZ99999,WVWZZZ1JZXW000004,910000047,2024-02-30\n",
		})
		_, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
		var ie *sqlstore.ImportError
		if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].File != "vehicles.csv" || ie.Problems[0].Line != 2 {
			t.Fatalf("err = %v, want one problem on vehicles.csv line 2", err)
		}
		st := stateOf(t, s, lessee.Keys{OrgNrs: []string{fleetOwner, "910000047"}})
		if e := st.Enterprises[fleetOwner]; e.Name != "Fleet AS" || !e.FleetOwner {
			t.Errorf("fleet owner changed by a refused import: %+v", e)
		}
		if st.Enterprises["910000047"] != nil {
			t.Error("new enterprise loaded by a refused import")
		}
	})
}

func TestImportUpsert(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		importRegistry(t, s) // the same files again change nothing
		if got := vehicle(t, s, vin1); len(got.Periods) != 1 {
			t.Fatalf("re-import duplicated periods: %+v", got.Periods)
		}

		dir := writeFiles(t, map[string]string{
			"enterprises.csv": "orgnr,name,fleet_owner\n910000012,Third Party AS,true\n",
			"terms.csv":       "orgnr,agreement,version,accepted_at\n910000012,lessee_api,2.0,2024-03-01T08:00:00+01:00\n",
			// vin1 gives up EL12345 and ends its imported period; vin2 takes EL12345.
			"vehicles.csv": "vin,registration_number,owner_orgnr,owner_since,lessee_id,lessee_start,lessee_end\n" +
				vin1 + ",XY11111,910000012,2024-03-01,01019010046,2023-01-01,2024-02-29\n" +
				vin2 + ",EL12345,910000004,2020-01-01,,,\n",
			"delegations.csv": "fleet_owner_orgnr,delegate_orgnr,valid_from,valid_to,revoked_at\n910000004,910000012,2024-01-01,,2024-04-01\n",
		})
		stats, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
		if err != nil {
			t.Fatalf("import update: %v", err)
		}
		if want := (sqlstore.ImportStats{Enterprises: 1, Terms: 1, Vehicles: 2, LesseePeriods: 1, Delegations: 1}); stats != want {
			t.Errorf("stats = %+v, want %+v", stats, want)
		}
		v1 := vehicle(t, s, vin1)
		if v1.RegistrationNumber != "XY11111" || v1.Owner != thirdParty || v1.OwnerSince != "2024-03-01" ||
			len(v1.Periods) != 1 || v1.Periods[0].End != "2024-02-29" {
			t.Errorf("vehicle 1 = %+v", v1)
		}
		if v2 := vehicle(t, s, vin2); v2.RegistrationNumber != "EL12345" {
			t.Errorf("vehicle 2 = %+v", v2)
		}
		st := stateOf(t, s, lessee.Keys{OrgNrs: []string{thirdParty}})
		if e := st.Enterprises[thirdParty]; !e.FleetOwner || len(e.Terms) != 2 {
			t.Errorf("third party = %+v", e)
		}
		dels := st.Delegations[[2]string{fleetOwner, thirdParty}]
		if len(dels) != 2 || dels[1].RevokedAt == nil {
			t.Errorf("delegations = %+v", dels)
		}
	})
}

func TestImportReferences(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		t.Run("OK", func(t *testing.T) {
			// Orgnrs already in the registry need not be in the files.
			dir := writeFiles(t, map[string]string{
				"terms.csv": "orgnr,agreement,version,accepted_at\n910000020,lessee_api,1.0,2024-01-01\n",
			})
			if _, err := s.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("ErrUnknownEnterprise", func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"delegations.csv": "fleet_owner_orgnr,delegate_orgnr,valid_from\n910000004,910000039,2024-01-01\n",
			})
			_, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
			var ie *sqlstore.ImportError
			if !errors.As(err, &ie) || len(ie.Problems) != 1 || !strings.Contains(ie.Problems[0].Message, "delegate_orgnr 910000039") {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("ErrRegistrationTaken", func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"vehicles.csv": "registration_number,vin,owner_orgnr,owner_since\nEL12345,WVWZZZ1JZXW000004,910000004,2024-01-01\n",
			})
			_, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
			var ie *sqlstore.ImportError
			if !errors.As(err, &ie) || len(ie.Problems) != 1 || !strings.Contains(ie.Problems[0].Message, vin1) {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("ErrSynthetic", func(t *testing.T) {
			// A synthetic number (month + 40) with valid check digits.
			files := map[string]string{
				"vehicles.csv": "registration_number,vin,owner_orgnr,owner_since,lessee_id,lessee_start,lessee_end\n" +
					"ZZ12345,WVWZZZ1JZXW000005,910000004,2024-01-01," + synthetic + ",2024-01-01,\n",
			}
			_, err := s.Import(ctx, writeFiles(t, files), sqlstore.ImportOptions{})
			var ie *sqlstore.ImportError
			if !errors.As(err, &ie) || !strings.Contains(ie.Problems[0].Message, "synthetic") {
				t.Fatalf("err = %v, want synthetic refused", err)
			}
			if _, err := s.Import(ctx, writeFiles(t, files), sqlstore.ImportOptions{AllowSynthetic: true}); err != nil {
				t.Fatalf("with AllowSynthetic: %v", err)
			}
		})
		t.Run("ErrLesseeEndNotAfterStart", func(t *testing.T) {
			// A zero-day period on line 3 and an inverted one on line 4: each
			// refused with its line, and nothing of the file loaded.
			dir := writeFiles(t, map[string]string{
				"vehicles.csv": "registration_number,vin,owner_orgnr,owner_since,lessee_id,lessee_start,lessee_end\n" +
					"ZZ22222,WVWZZZ1JZXW000007,910000004,2024-01-01,01019010046,2024-01-01,2024-06-01\n" +
					"ZZ33333,WVWZZZ1JZXW000008,910000004,2024-01-01,01019010046,2024-03-01,2024-03-01\n" +
					"ZZ44444,WVWZZZ1JZXW000009,910000004,2024-01-01,01019010046,2024-03-01,2024-02-01\n",
			})
			_, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
			var ie *sqlstore.ImportError
			if !errors.As(err, &ie) || ie.Total != 2 {
				t.Fatalf("err = %v, want 2 problems", err)
			}
			for i, line := range []int{3, 4} {
				if p := ie.Problems[i]; p.Line != line || !strings.Contains(p.Message, "is not after lessee_start") {
					t.Errorf("problem %d = %+v, want line %d, lessee_end not after lessee_start", i, p, line)
				}
			}
			if v, err := s.Vehicle(ctx, "WVWZZZ1JZXW000007"); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("a refused import loaded %+v (err %v)", v, err)
			}
		})
		t.Run("ErrDuplicates", func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"enterprises.csv": "orgnr,name,fleet_owner\n910000055,A,true\n910000055,B,true\n",
				"vehicles.csv": "registration_number,vin,owner_orgnr,owner_since\n" +
					"QQ11111,WVWZZZ1JZXW000006,910000004,2024-01-01\nQQ11111,WVWZZZ1JZXW000006,910000004,2024-01-01\n",
			})
			_, err := s.Import(ctx, dir, sqlstore.ImportOptions{})
			var ie *sqlstore.ImportError
			if !errors.As(err, &ie) || ie.Total != 3 {
				t.Fatalf("err = %v, want 3 problems (orgnr, vin, reg)", err)
			}
		})
		t.Run("ErrNoFiles", func(t *testing.T) {
			_, err := s.Import(ctx, t.TempDir(), sqlstore.ImportOptions{})
			var ie *sqlstore.ImportError
			if err == nil || errors.As(err, &ie) {
				t.Fatalf("err = %v, want a plain error", err)
			}
		})
	})
}

func TestImportErrorCap(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.SQLite(t)
	var b strings.Builder
	b.WriteString("orgnr,name,fleet_owner\n")
	for range 150 {
		b.WriteString("123,X,true\n")
	}
	_, err := s.Import(context.Background(), writeFiles(t, map[string]string{"enterprises.csv": b.String()}), sqlstore.ImportOptions{})
	var ie *sqlstore.ImportError
	if !errors.As(err, &ie) || ie.Total != 150 || len(ie.Problems) != 100 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "and 50 more") || ie.Problems[99].Line != 101 {
		t.Errorf("capped error = %v", err)
	}
}

func TestEnterprise(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		// Whether a submitter accepted any terms by now, as the worker asks
		// it through (*lessee.Enterprise).AcceptedAny.
		tests := []struct {
			name  string
			orgnr string
			now   time.Time
			want  bool
		}{
			{"OK", fleetOwner, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), true},
			{"OKThirdParty", thirdParty, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), true},
			{"ErrNotYet", fleetOwner, time.Date(2024, 1, 1, 9, 59, 0, 0, time.UTC), false},
			{"ErrNone", lesseeOrg, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e, err := s.Enterprise(ctx, tt.orgnr)
				if err != nil {
					t.Fatalf("Enterprise(%s): %v", tt.orgnr, err)
				}
				if got := e.AcceptedAny(tt.now); got != tt.want {
					t.Errorf("Enterprise(%s).AcceptedAny(%v) = %v; want %v", tt.orgnr, tt.now, got, tt.want)
				}
			})
		}

		t.Run("WithTerms", func(t *testing.T) {
			e, err := s.Enterprise(ctx, fleetOwner)
			if err != nil {
				t.Fatal(err)
			}
			want := &lessee.Enterprise{OrgNr: fleetOwner, Name: "Fleet AS", FleetOwner: true, Language: lessee.English, Terms: []lessee.Acceptance{{
				OrgNr: fleetOwner, Agreement: lessee.AgreementLesseeAPI, Version: "1.0",
				AcceptedAt: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC),
			}}}
			if !reflect.DeepEqual(e, want) {
				t.Errorf("Enterprise = %+v\nwant %+v", e, want)
			}
			// The same enterprise a chunk is given.
			st := stateOf(t, s, lessee.Keys{OrgNrs: []string{fleetOwner}})
			if !reflect.DeepEqual(st.Enterprises[fleetOwner], e) {
				t.Errorf("chunk state has %+v\nEnterprise %+v", st.Enterprises[fleetOwner], e)
			}
		})
		t.Run("WithoutTerms", func(t *testing.T) {
			e, err := s.Enterprise(ctx, lesseeOrg)
			if err != nil || e.OrgNr != lesseeOrg || e.Name != "Lessee Corp AS" || len(e.Terms) != 0 {
				t.Errorf("Enterprise = %+v, %v", e, err)
			}
		})
		t.Run("ErrUnknown", func(t *testing.T) {
			e, err := s.Enterprise(ctx, unknownOrg)
			if !errors.Is(err, sqlstore.ErrNotFound) || lessee.ErrorCode(err) != lessee.ENOTFOUND || e != nil {
				t.Errorf("Enterprise(unknown) = %+v, %v; want ErrNotFound", e, err)
			}
		})
	})
}

// TestEnterpriseTermsOnly checks an orgnr with terms but no enterprise row,
// which the foreign key rules out today: its terms still count.
func TestEnterpriseTermsOnly(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		importRegistry(t, s)
		// A copy of the table without its foreign key, on either database.
		for _, q := range []string{
			`CREATE TABLE terms_copy AS SELECT * FROM terms_acceptances`,
			`DROP TABLE terms_acceptances`,
			`ALTER TABLE terms_copy RENAME TO terms_acceptances`,
			`INSERT INTO terms_acceptances (orgnr, agreement, version, accepted_at)
				VALUES ('` + unknownOrg + `', 'lessee_api', '2.0', '2024-02-01T00:00:00.000000000Z')`,
		} {
			if err := s.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		e, err := s.Enterprise(ctx, unknownOrg)
		want := &lessee.Enterprise{OrgNr: unknownOrg, Terms: []lessee.Acceptance{{
			OrgNr: unknownOrg, Agreement: lessee.AgreementLesseeAPI, Version: "2.0",
			AcceptedAt: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
		}}}
		if err != nil || !reflect.DeepEqual(e, want) {
			t.Fatalf("Enterprise = %+v, %v\nwant %+v", e, err, want)
		}
		if e.AcceptedAny(time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)) || !e.AcceptedAny(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("AcceptedAny wrong around the acceptance")
		}
		if _, err := s.Enterprise(ctx, "910000047"); lessee.ErrorCode(err) != lessee.ENOTFOUND {
			t.Errorf("Enterprise of an orgnr with nothing: err = %v, want ENOTFOUND", err)
		}
	})
}

func TestImportLanguage(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		languages := func() map[string]lessee.Language {
			t.Helper()
			out := map[string]lessee.Language{}
			for _, o := range []string{fleetOwner, thirdParty, "910000020"} {
				e, err := s.Enterprise(ctx, o)
				if err != nil {
					t.Fatalf("enterprise %s: %v", o, err)
				}
				out[o] = e.Language
			}
			// A chunk's state (and the authority cache) carry it alike.
			st := stateOf(t, s, lessee.Keys{OrgNrs: []string{fleetOwner, thirdParty, "910000020"}})
			for o, l := range out {
				if got := st.Enterprises[o].Language; got != l {
					t.Errorf("%s: chunk state language %q, Enterprise %q", o, got, l)
				}
			}
			return out
		}
		load := func(enterprises string) error {
			t.Helper()
			_, err := s.Import(ctx, writeFiles(t, map[string]string{"enterprises.csv": enterprises}), sqlstore.ImportOptions{})
			return err
		}
		if err := load("orgnr,name,fleet_owner,language\n910000004,Fleet AS,true,nb\n910000012,Third Party AS,false,EN\n910000020,Lessee Corp AS,false,\n"); err != nil {
			t.Fatal(err)
		}
		want := map[string]lessee.Language{fleetOwner: lessee.Norwegian, thirdParty: lessee.English, "910000020": ""}
		if got := languages(); !reflect.DeepEqual(got, want) {
			t.Errorf("languages = %v, want %v", got, want)
		}

		// A file without the column leaves the languages as they are.
		if err := load("orgnr,name,fleet_owner\n910000004,Fleet AS,true\n910000012,Renamed AS,false\n"); err != nil {
			t.Fatal(err)
		}
		if got := languages(); !reflect.DeepEqual(got, want) {
			t.Errorf("after an import without language: %v, want %v", got, want)
		}

		// One with it sets them, empty too (the default language).
		if err := load("orgnr,name,fleet_owner,language\n910000004,Fleet AS,true,\n910000020,Lessee Corp AS,false,en\n"); err != nil {
			t.Fatal(err)
		}
		want = map[string]lessee.Language{fleetOwner: "", thirdParty: lessee.English, "910000020": lessee.English}
		if got := languages(); !reflect.DeepEqual(got, want) {
			t.Errorf("after an import with language: %v, want %v", got, want)
		}

		err := load("orgnr,name,fleet_owner,language\n910000004,Fleet AS,true,nb\n910000012,Third Party AS,false,de\n")
		var ie *sqlstore.ImportError
		if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Line != 3 ||
			!strings.Contains(ie.Problems[0].Message, "language") {
			t.Fatalf("err = %v, want one problem about language on line 3", err)
		}
		if got := languages(); !reflect.DeepEqual(got, want) {
			t.Errorf("a refused import changed languages: %v, want %v", got, want)
		}
	})
}
