package gen

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
)

// RegistryConfig says what registry to generate. Zero shares take their
// defaults; every share is of the enterprises or vehicles generated.
type RegistryConfig struct {
	Seed        int64
	Enterprises int // at least 1
	Vehicles    int

	// FleetOwners is the share of enterprises with the fleet-owner role
	// (default 0.6); 92% of them accepted the lessee API agreement.
	FleetOwners float64
	// ThirdParties is the share of third parties (default 0.2): they
	// accepted the third-party agreement and hold one to three
	// delegations, some expired, revoked or not yet valid.
	ThirdParties float64
	// Leased is the share of vehicles with an open lessee period (default
	// 0.5); another tenth have a period that has ended.
	Leased float64
	// Synthetic makes person lessees synthetic test numbers (month + 80),
	// which only a registry run with --test-registry accepts.
	Synthetic bool
}

func (c RegistryConfig) withDefaults() RegistryConfig {
	if c.FleetOwners == 0 {
		c.FleetOwners = 0.6
	}
	if c.ThirdParties == 0 {
		c.ThirdParties = 0.2
	}
	if c.Leased == 0 {
		c.Leased = 0.5
	}
	return c
}

// Registry is a generated (or read) registry. In a generated one the first
// enterprise is always a fleet owner with the lessee API agreement, and
// usually the largest fleet; the second, when there are two or more, a third
// party it delegated to.
type Registry struct {
	Enterprises []lessee.Enterprise // with Terms
	Delegations []lessee.Delegation
	Vehicles    []lessee.Vehicle // Periods holds the imported lessee period, if any
}

// Registry file names, as `lessee registry import` reads them.
const (
	FileEnterprises = "enterprises.csv"
	FileTerms       = "terms.csv"
	FileVehicles    = "vehicles.csv"
	FileDelegations = "delegations.csv"
)

// The dates generated registry data lies in. Change files start after
// lastRegistryDate, so no change predates the state it changes.
const (
	firstOwnerDate   lessee.Date = "2015-01-01"
	lastRegistryDate lessee.Date = "2025-06-30"
)

// NewRegistry generates the registry cfg describes, in memory.
func NewRegistry(cfg RegistryConfig) (Registry, error) {
	if cfg.Enterprises < 1 {
		return Registry{}, errors.New("generate registry: at least one enterprise is needed")
	}
	if cfg.Vehicles < 0 || cfg.Vehicles >= plateSpace/2 {
		return Registry{}, fmt.Errorf("generate registry: vehicles must be between 0 and %d", plateSpace/2)
	}
	cfg = cfg.withDefaults()
	r := newRand(cfg.Seed, "registry")
	var reg Registry

	// Enterprises, roles and terms.
	seen := map[string]bool{}
	var fleetOwners, thirdParties []int
	for i := range cfg.Enterprises {
		var org string
		for {
			o, err := orgNr(r)
			if err != nil {
				return Registry{}, err
			}
			if !seen[o] {
				seen[o] = true
				org = o
				break
			}
		}
		e := lessee.Enterprise{
			OrgNr: org,
			Name:  fmt.Sprintf("%s %s %d AS", namePrefixes[r.IntN(len(namePrefixes))], nameKinds[r.IntN(len(nameKinds))], i+1),
		}
		role := r.Float64()
		accept := func(a lessee.Agreement, version string) {
			at := time.Date(2023, 1, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(2*365*24)) * time.Hour)
			e.Terms = append(e.Terms, lessee.Acceptance{OrgNr: org, Agreement: a, Version: version, AcceptedAt: at})
		}
		switch {
		case i == 0 || (i > 1 && role < cfg.FleetOwners):
			e.FleetOwner = true
			fleetOwners = append(fleetOwners, i)
			if i == 0 || r.Float64() < 0.92 {
				accept(lessee.AgreementLesseeAPI, "1.0")
				if r.Float64() < 0.3 {
					accept(lessee.AgreementLesseeAPI, "2.0")
				}
			}
			if i > 0 && r.Float64() < 0.1 {
				accept(lessee.AgreementThirdParty, "1.0")
			}
		case i == 1 || role < cfg.FleetOwners+cfg.ThirdParties:
			thirdParties = append(thirdParties, i)
			if i == 1 || r.Float64() < 0.95 {
				accept(lessee.AgreementThirdParty, "1.0")
			}
		default:
			if r.Float64() < 0.5 {
				accept(lessee.AgreementLesseeAPI, "1.0")
			}
		}
		reg.Enterprises = append(reg.Enterprises, e)
	}

	// Delegations: each third party acts for one to three fleet owners.
	for _, tp := range thirdParties {
		n := 1 + r.IntN(3)
		used := map[int]bool{}
		for k := 0; k < n && len(used) < len(fleetOwners); k++ {
			fo := fleetOwners[r.IntN(len(fleetOwners))]
			if tp == 1 && k == 0 {
				fo = 0
			}
			if used[fo] {
				continue
			}
			used[fo] = true
			d := lessee.Delegation{
				FleetOwner: reg.Enterprises[fo].OrgNr,
				Delegate:   reg.Enterprises[tp].OrgNr,
				ValidFrom:  day("2022-01-01", r.IntN(3*365)),
			}
			switch p := r.Float64(); {
			case tp == 1 && k == 0, p < 0.75:
				// Valid and open-ended.
			case p < 0.85:
				d.ValidTo = day(d.ValidFrom, 30+r.IntN(365))
			case p < 0.95:
				at := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(300*24)) * time.Hour)
				d.RevokedAt = &at
			default:
				d.ValidFrom = day("2030-01-01", r.IntN(365))
			}
			reg.Delegations = append(reg.Delegations, d)
		}
	}

	// Vehicles, most of them in a few large fleets.
	plateOffset := r.IntN(plateSpace)
	vinOffset := r.IntN(vinSpace)
	ownerSpan := daysBetween(firstOwnerDate, "2024-12-31")
	for n := range cfg.Vehicles {
		fo := fleetOwners[int(float64(len(fleetOwners))*math.Pow(r.Float64(), 2))]
		v := lessee.Vehicle{
			RegistrationNumber: plate(n, plateOffset),
			VIN:                vin(r, wmis[r.IntN(len(wmis))], n, vinOffset),
			Owner:              reg.Enterprises[fo].OrgNr,
			OwnerSince:         day(firstOwnerDate, r.IntN(ownerSpan+1)),
		}
		switch p := r.Float64(); {
		case p < cfg.Leased+0.1:
			id, err := lesseeID(r, cfg.Synthetic)
			if err != nil {
				return Registry{}, err
			}
			start := day(v.OwnerSince, r.IntN(daysBetween(v.OwnerSince, lastRegistryDate)-30))
			per := lessee.Period{ID: "import-" + v.VIN + "-" + string(start), LesseeID: id, Start: start}
			if p >= cfg.Leased {
				per.End = day(start, 1+r.IntN(daysBetween(start, lastRegistryDate)))
			}
			v.Periods = []lessee.Period{per}
		}
		reg.Vehicles = append(reg.Vehicles, v)
	}
	return reg, nil
}

// lesseeID draws a lessee: mostly people (a few with D-numbers), some
// enterprises.
func lesseeID(r *rand.Rand, synthetic bool) (string, error) {
	switch p := r.Float64(); {
	case p < 0.8:
		return personID(r, personFNR, synthetic)
	case p < 0.85:
		return personID(r, personDNumber, synthetic)
	default:
		return orgNr(r)
	}
}

// WriteRegistry generates the registry cfg describes and writes it to dir
// as enterprises.csv, terms.csv, vehicles.csv and delegations.csv, creating
// dir if needed.
func WriteRegistry(dir string, cfg RegistryConfig) (Registry, error) {
	reg, err := NewRegistry(cfg)
	if err != nil {
		return Registry{}, err
	}
	if err := reg.Write(dir); err != nil {
		return Registry{}, err
	}
	return reg, nil
}

// Write writes the registry's four files to dir.
func (reg Registry) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	files := []struct {
		name string
		fill func(w *csv.Writer) error
	}{
		{FileEnterprises, func(w *csv.Writer) error {
			if err := w.Write([]string{"orgnr", "name", "fleet_owner"}); err != nil {
				return err
			}
			for _, e := range reg.Enterprises {
				if err := w.Write([]string{e.OrgNr, e.Name, strconv.FormatBool(e.FleetOwner)}); err != nil {
					return err
				}
			}
			return nil
		}},
		{FileTerms, func(w *csv.Writer) error {
			if err := w.Write([]string{"orgnr", "agreement", "version", "accepted_at"}); err != nil {
				return err
			}
			for _, e := range reg.Enterprises {
				for _, t := range e.Terms {
					if err := w.Write([]string{e.OrgNr, string(t.Agreement), t.Version, t.AcceptedAt.UTC().Format(time.RFC3339)}); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{FileVehicles, func(w *csv.Writer) error {
			if err := w.Write([]string{"registration_number", "vin", "owner_orgnr", "owner_since", "lessee_id", "lessee_start", "lessee_end"}); err != nil {
				return err
			}
			for _, v := range reg.Vehicles {
				rec := []string{v.RegistrationNumber, v.VIN, v.Owner, string(v.OwnerSince), "", "", ""}
				if len(v.Periods) > 0 {
					p := v.Periods[len(v.Periods)-1]
					rec[4], rec[5], rec[6] = p.LesseeID, string(p.Start), string(p.End)
				}
				if err := w.Write(rec); err != nil {
					return err
				}
			}
			return nil
		}},
		{FileDelegations, func(w *csv.Writer) error {
			if err := w.Write([]string{"fleet_owner_orgnr", "delegate_orgnr", "valid_from", "valid_to", "revoked_at"}); err != nil {
				return err
			}
			for _, d := range reg.Delegations {
				revoked := ""
				if d.RevokedAt != nil {
					revoked = d.RevokedAt.UTC().Format(time.RFC3339)
				}
				if err := w.Write([]string{d.FleetOwner, d.Delegate, string(d.ValidFrom), string(d.ValidTo), revoked}); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, f := range files {
		if err := writeCSVFile(filepath.Join(dir, f.name), f.fill); err != nil {
			return fmt.Errorf("write registry: %w", err)
		}
	}
	return nil
}

func writeCSVFile(path string, fill func(*csv.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	w := csv.NewWriter(bw)
	if err := fill(w); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// ReadRegistry reads the registry files in dir, in the import format, so
// that change files can be generated for any registry, generated or not.
// Absent files count as empty. Values are taken as written: run the files
// through `lessee registry import` to validate them.
func ReadRegistry(dir string) (Registry, error) {
	var reg Registry
	byOrg := map[string]int{}
	err := readCSVFile(filepath.Join(dir, FileEnterprises), func(f map[string]string) error {
		byOrg[f["orgnr"]] = len(reg.Enterprises)
		reg.Enterprises = append(reg.Enterprises, lessee.Enterprise{
			OrgNr: f["orgnr"], Name: f["name"], FleetOwner: strings.EqualFold(f["fleet_owner"], "true"),
		})
		return nil
	})
	if err != nil {
		return Registry{}, err
	}
	err = readCSVFile(filepath.Join(dir, FileTerms), func(f map[string]string) error {
		at, err := parseInstant(f["accepted_at"])
		if err != nil {
			return fmt.Errorf("accepted_at: %w", err)
		}
		i, ok := byOrg[f["orgnr"]]
		if !ok {
			return fmt.Errorf("orgnr %s is not in %s", f["orgnr"], FileEnterprises)
		}
		reg.Enterprises[i].Terms = append(reg.Enterprises[i].Terms, lessee.Acceptance{
			OrgNr: f["orgnr"], Agreement: lessee.Agreement(f["agreement"]), Version: f["version"], AcceptedAt: at,
		})
		return nil
	})
	if err != nil {
		return Registry{}, err
	}
	err = readCSVFile(filepath.Join(dir, FileVehicles), func(f map[string]string) error {
		v := lessee.Vehicle{
			RegistrationNumber: f["registration_number"], VIN: f["vin"],
			Owner: f["owner_orgnr"], OwnerSince: lessee.Date(f["owner_since"]),
		}
		if id := f["lessee_id"]; id != "" {
			start := lessee.Date(f["lessee_start"])
			v.Periods = []lessee.Period{{ID: "import-" + v.VIN + "-" + string(start), LesseeID: id,
				Start: start, End: lessee.Date(f["lessee_end"])}}
		}
		reg.Vehicles = append(reg.Vehicles, v)
		return nil
	})
	if err != nil {
		return Registry{}, err
	}
	err = readCSVFile(filepath.Join(dir, FileDelegations), func(f map[string]string) error {
		d := lessee.Delegation{FleetOwner: f["fleet_owner_orgnr"], Delegate: f["delegate_orgnr"],
			ValidFrom: lessee.Date(f["valid_from"]), ValidTo: lessee.Date(f["valid_to"])}
		if s := f["revoked_at"]; s != "" {
			at, err := parseInstant(s)
			if err != nil {
				return fmt.Errorf("revoked_at: %w", err)
			}
			d.RevokedAt = &at
		}
		reg.Delegations = append(reg.Delegations, d)
		return nil
	})
	if err != nil {
		return Registry{}, err
	}
	return reg, nil
}

// parseInstant reads an RFC 3339 time or a date (midnight UTC; close enough
// for choosing rows).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

// readCSVFile calls fn with every data line of a CSV file with a header,
// by column name. An absent file has no lines.
func readCSVFile(path string, fn func(map[string]string) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read registry: %w", err)
	}
	defer func() { _ = f.Close() }() // only read
	r := csv.NewReader(bufio.NewReader(f))
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	fields := make(map[string]string, len(header))
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(path), err)
		}
		clear(fields)
		for i, h := range header {
			if i < len(rec) {
				fields[h] = strings.TrimSpace(rec[i])
			}
		}
		if err := fn(fields); err != nil {
			line, _ := r.FieldPos(0)
			return fmt.Errorf("read %s line %d: %w", filepath.Base(path), line, err)
		}
	}
}
