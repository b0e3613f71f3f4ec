package gen_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
	"github.com/fleetreg/lessee/validate"
)

var smallRegistry = gen.RegistryConfig{Seed: 7, Enterprises: 40, Vehicles: 3000}

// readDir returns every file of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{gen.FileEnterprises, gen.FileTerms, gen.FileVehicles, gen.FileDelegations} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

func TestWriteRegistryDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	if _, err := gen.WriteRegistry(a, smallRegistry); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.WriteRegistry(b, smallRegistry); err != nil {
		t.Fatal(err)
	}
	other := smallRegistry
	other.Seed++
	if _, err := gen.WriteRegistry(c, other); err != nil {
		t.Fatal(err)
	}
	fa, fb, fc := readDir(t, a), readDir(t, b), readDir(t, c)
	for name := range fa {
		if !bytes.Equal(fa[name], fb[name]) {
			t.Errorf("%s differs between two runs with one seed", name)
		}
	}
	if bytes.Equal(fa[gen.FileVehicles], fc[gen.FileVehicles]) {
		t.Errorf("%s is the same for seeds %d and %d", gen.FileVehicles, smallRegistry.Seed, other.Seed)
	}
}

func TestRegistryValid(t *testing.T) {
	t.Parallel()
	for _, synthetic := range []bool{false, true} {
		name := "Real"
		if synthetic {
			name = "Synthetic"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := smallRegistry
			cfg.Synthetic = synthetic
			reg, err := gen.NewRegistry(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(reg.Enterprises) != cfg.Enterprises || len(reg.Vehicles) != cfg.Vehicles {
				t.Fatalf("got %d enterprises, %d vehicles", len(reg.Enterprises), len(reg.Vehicles))
			}
			orgs := map[string]bool{}
			var fleet, third int
			for _, e := range reg.Enterprises {
				if err := ident.OrgNr(e.OrgNr); err != nil {
					t.Errorf("orgnr %s: %v", e.OrgNr, err)
				}
				if orgs[e.OrgNr] {
					t.Errorf("orgnr %s twice", e.OrgNr)
				}
				orgs[e.OrgNr] = true
				if e.FleetOwner {
					fleet++
				}
				if e.Accepted(lessee.AgreementThirdParty, time.Now()) {
					third++
				}
			}
			if first := reg.Enterprises[0]; !first.FleetOwner || !first.Accepted(lessee.AgreementLesseeAPI, time.Now()) {
				t.Errorf("first enterprise is not a fleet owner with terms: %+v", first)
			}
			if fleet < 10 || third < 4 || len(reg.Delegations) < 4 {
				t.Errorf("roles: %d fleet owners, %d third parties, %d delegations", fleet, third, len(reg.Delegations))
			}
			vins, regs := map[string]bool{}, map[string]bool{}
			var leased, persons, dnumbers int
			for _, v := range reg.Vehicles {
				if got, err := ident.VIN(v.VIN); err != nil || got != v.VIN {
					t.Errorf("vin %s: %v", v.VIN, err)
				}
				if got, err := ident.NormaliseRegNumber(v.RegistrationNumber); err != nil || got != v.RegistrationNumber {
					t.Errorf("registration number %s: %v", v.RegistrationNumber, err)
				}
				if vins[v.VIN] || regs[v.RegistrationNumber] {
					t.Errorf("vehicle %s / %s twice", v.VIN, v.RegistrationNumber)
				}
				vins[v.VIN], regs[v.RegistrationNumber] = true, true
				if !orgs[v.Owner] {
					t.Errorf("vehicle %s owned by unknown %s", v.VIN, v.Owner)
				}
				for _, p := range v.Periods {
					leased++
					kind, err := ident.LesseeID(p.LesseeID, synthetic)
					if err != nil {
						t.Errorf("vehicle %s: lessee %s: %v", v.VIN, ident.Mask(p.LesseeID), err)
					}
					if _, err := ident.LesseeID(p.LesseeID, false); synthetic && kind != ident.KindEnterprise && err == nil {
						t.Errorf("vehicle %s: lessee %s is not synthetic", v.VIN, ident.Mask(p.LesseeID))
					}
					switch kind {
					case ident.KindPerson:
						persons++
					case ident.KindDNumber:
						dnumbers++
					}
					if p.Start < v.OwnerSince || (p.End != "" && p.End < p.Start) {
						t.Errorf("vehicle %s: period %+v outside ownership from %s", v.VIN, p, v.OwnerSince)
					}
				}
			}
			if leased < cfg.Vehicles/2 || persons == 0 || dnumbers == 0 {
				t.Errorf("lessees: %d periods, %d persons, %d D-numbers", leased, persons, dnumbers)
			}
		})
	}
}

func TestReadRegistryRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want, err := gen.WriteRegistry(dir, smallRegistry)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gen.ReadRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read registry differs from the one written")
	}
}

func TestWriteRegistryImports(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, s *sqlstore.Store) {
		dir := t.TempDir()
		reg, err := gen.WriteRegistry(dir, smallRegistry)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := s.Import(context.Background(), dir, sqlstore.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		terms, periods := 0, 0
		for _, e := range reg.Enterprises {
			terms += len(e.Terms)
		}
		for _, v := range reg.Vehicles {
			periods += len(v.Periods)
		}
		want := sqlstore.ImportStats{Enterprises: len(reg.Enterprises), Terms: terms, Vehicles: len(reg.Vehicles),
			LesseePeriods: periods, Delegations: len(reg.Delegations)}
		if stats != want {
			t.Errorf("import stats = %+v, want %+v", stats, want)
		}
		v := reg.Vehicles[0]
		got, err := s.Vehicle(context.Background(), v.VIN)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("stored vehicle = %+v, want %+v", got, v)
		}
	})
}

func TestWriteChangesDeterministic(t *testing.T) {
	t.Parallel()
	reg, err := gen.NewRegistry(smallRegistry)
	if err != nil {
		t.Fatal(err)
	}
	write := func(seed int64) []byte {
		var b bytes.Buffer
		if err := gen.WriteChanges(&b, reg, gen.ChangesConfig{Seed: seed, Rows: 2000}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b, c := write(1), write(1), write(2)
	if !bytes.Equal(a, b) {
		t.Error("two change files with one seed differ")
	}
	if bytes.Equal(a, c) {
		t.Error("change files for seeds 1 and 2 are the same")
	}
	if got := strings.SplitN(string(a), "\n", 2)[0]; got != strings.Join(gen.ChangeHeader(), ",") ||
		got != "operation,registration_number,vin,lessee_id,lessee_name,start_date,end_date,on_behalf_of,reference" {
		t.Errorf("header = %q", got)
	}
	if n := bytes.Count(a, []byte("\n")); n != 2001 {
		t.Errorf("file has %d lines, want 2001", n)
	}
}

func TestWriteChangesErrors(t *testing.T) {
	t.Parallel()
	reg, err := gen.NewRegistry(smallRegistry)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ErrUnknownSubmitter", func(t *testing.T) {
		t.Parallel()
		err := gen.WriteChanges(io.Discard, reg, gen.ChangesConfig{Rows: 10, Submitter: "999999999"})
		if err == nil || !strings.Contains(err.Error(), "not an enterprise") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ErrTooManyRowsPerVehicle", func(t *testing.T) {
		t.Parallel()
		tiny, err := gen.NewRegistry(gen.RegistryConfig{Seed: 1, Enterprises: 2, Vehicles: 3})
		if err != nil {
			t.Fatal(err)
		}
		err = gen.WriteChanges(io.Discard, tiny, gen.ChangesConfig{Rows: 200000})
		if err == nil || !strings.Contains(err.Error(), "too many changes per vehicle") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ErrNoVehicles", func(t *testing.T) {
		t.Parallel()
		// An enterprise that is neither fleet owner nor third party.
		var idle string
		for _, e := range reg.Enterprises {
			if !e.FleetOwner && len(e.Terms) == 0 {
				idle = e.OrgNr
			}
		}
		if idle == "" {
			t.Skip("no idle enterprise in this registry")
		}
		err := gen.WriteChanges(io.Discard, reg, gen.ChangesConfig{Rows: 10, Submitter: idle})
		if err == nil || !strings.Contains(err.Error(), "may change no vehicle") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestChangesOutcomesMatchIntent processes generated files the way the
// worker does (ingest, validate, sqlstore chunks) and checks every row's
// outcome against the intent its reference names.
func TestChangesOutcomesMatchIntent(t *testing.T) {
	t.Parallel()
	tiny := gen.RegistryConfig{Seed: 1, Enterprises: 2, Vehicles: 3}
	for _, tc := range []struct {
		name       string
		registry   gen.RegistryConfig
		thirdParty bool // submit as the registry's second enterprise
		rows       int
		codes      []lessee.Code // codes the file must contain
	}{
		{"FleetOwner", smallRegistry, false, 6000, []lessee.Code{
			lessee.CodeInvalidOperation, lessee.CodeInvalidVIN, lessee.CodeInvalidRegNumber, lessee.CodeInvalidLesseeID,
			lessee.CodeInvalidDate, lessee.CodeMissingField, lessee.CodeEndBeforeStart, lessee.CodeVehicleNotFound,
			lessee.CodeNotOwner, lessee.CodeLesseeConflict, lessee.CodeNoActiveLessee, lessee.CodeLesseeMismatch,
			lessee.CodeRegVINMismatch, lessee.CodeTermsNotAccepted}},
		{"ThirdParty", smallRegistry, true, 6000, []lessee.Code{
			lessee.CodeNotOwner, lessee.CodeLesseeConflict, lessee.CodeNoActiveLessee,
			lessee.CodeNoDelegation, lessee.CodeNotFleetOwner}},
		// Thousands of changes per vehicle: dates must stay valid.
		{"ManyRowsPerVehicle", tiny, false, 12000, []lessee.Code{lessee.CodeLesseeConflict}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			reg, err := gen.WriteRegistry(dir, tc.registry)
			if err != nil {
				t.Fatal(err)
			}
			submitter := reg.LargestFleet()
			if tc.thirdParty {
				submitter = reg.Enterprises[1].OrgNr
			}
			s := sqlstoretest.SQLite(t)
			if _, err := s.Import(ctx, dir, sqlstore.ImportOptions{}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "changes.csv")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := gen.WriteChanges(f, reg, gen.ChangesConfig{Seed: 3, Rows: tc.rows, Submitter: submitter}); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			outcomes := process(t, s, path, submitter)
			if len(outcomes) != tc.rows {
				t.Fatalf("%d outcomes for %d rows", len(outcomes), tc.rows)
			}
			counts := map[string]int{}
			for _, o := range outcomes {
				_, intent, _ := strings.Cut(o.Echo.Reference, "-")
				got := string(o.Status)
				if o.Status == lessee.StatusRejected {
					got = string(o.Code)
				}
				counts[got]++
				if got != intent {
					t.Errorf("row %d (%s): got %s (%s)", o.Line, o.Echo.Reference, got, o.Message)
				}
			}
			t.Logf("outcomes: %v", counts)
			if counts["applied"] < tc.rows*6/10 || counts["unchanged"] < tc.rows/50 {
				t.Errorf("mix: %v", counts)
			}
			for _, c := range tc.codes {
				if counts[string(c)] == 0 {
					t.Errorf("no row rejected with %s", c)
				}
			}
		})
	}
}

// process runs a change file through ingest, validate and sqlstore in
// chunks, as the worker does, and returns the stored outcomes.
func process(t *testing.T, s *sqlstore.Store, path, submitter string) []lessee.Result {
	t.Helper()
	ctx := context.Background()
	job, err := s.BeginJob(ctx, lessee.Job{ID: "gen-test", Key: "inbox/" + submitter + "/changes.csv", Submitter: submitter})
	if err != nil {
		t.Fatal(err)
	}
	table, _, err := ingest.Open(ctx, path, ingest.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	vjob := validate.Job{ID: job.ID, Submitter: submitter, ProcessingDate: job.ProcessingDate, Now: job.Started}
	var rows []lessee.Row
	done := 0
	flush := func() {
		if len(rows) == 0 {
			return
		}
		err := s.ApplyChunk(ctx, job.ID, done, validate.KeysFor(vjob, rows), func(st *lessee.State) lessee.Decision {
			return validate.Decide(validate.Config{}, vjob, st, rows)
		})
		if err != nil {
			t.Fatal(err)
		}
		done += len(rows)
		rows = rows[:0]
	}
	for {
		raw, err := table.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, validate.ParseRow(validate.Config{}, vjob, raw))
		if len(rows) == 500 {
			flush()
		}
	}
	flush()
	var out []lessee.Result
	if err := s.Results(ctx, job.ID, func(o lessee.Result) error {
		out = append(out, o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChangesCSVShape checks that every generated row has every column and
// that person lessees are valid identity numbers wherever a row is not
// meant to fail on them.
func TestChangesCSVShape(t *testing.T) {
	t.Parallel()
	reg, err := gen.NewRegistry(smallRegistry)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := gen.WriteChanges(&b, reg, gen.ChangesConfig{Seed: 9, Rows: 3000}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs[1:] {
		ref := r[lessee.ColReference]
		if !strings.HasPrefix(ref, "R") || !strings.Contains(ref, "-") {
			t.Errorf("row %d: reference %q", i+2, ref)
		}
		id := r[lessee.ColLesseeID]
		if id == "" || strings.HasSuffix(ref, string(lessee.CodeInvalidLesseeID)) {
			continue
		}
		if _, err := ident.LesseeID(id, false); err != nil {
			t.Errorf("row %d: lessee %s: %v", i+2, ident.Mask(id), err)
		}
	}
}
