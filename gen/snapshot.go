package gen

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fleetreg/lessee"
)

// SnapshotConfig says what snapshot of a fleet to generate. Zero shares
// take their defaults.
type SnapshotConfig struct {
	Seed int64
	// FleetOwner is the fleet the snapshot states; empty means the
	// registry's LargestFleet. The file is uploaded as the fleet owner.
	FleetOwner string
	// Replace is the share of leased vehicles given another lessee
	// (default 0.15), Remove the share given none (default 0.05) and
	// LeaveOut the share left out of the file, so removed as absent
	// (default 0.03, under the default threshold of 10%).
	Replace, Remove, LeaveOut float64
	// Add is the share of vehicles without a lessee given one (default 0.3).
	Add float64
	// Duplicate is the share of rows naming a vehicle again (default 0.005).
	Duplicate float64
	// Synthetic makes new person lessees synthetic test numbers.
	Synthetic bool
}

func (c SnapshotConfig) withDefaults() SnapshotConfig {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Replace, 0.15)
	def(&c.Remove, 0.05)
	def(&c.LeaveOut, 0.03)
	def(&c.Add, 0.3)
	def(&c.Duplicate, 0.005)
	return c
}

// SnapshotHeader is the header of a generated snapshot: the columns of a
// fleet export, and a reference.
var SnapshotHeader = []string{"registration_number", "vin", "lessee_id", "lessee_name", "start_date", "reference"}

// SnapshotStats counts what a generated snapshot means to do.
type SnapshotStats struct {
	Rows       int // data rows written
	Operations map[lessee.Operation]int
	Duplicates int // rows naming a vehicle again: DUPLICATE_VEHICLE
	LeftOut    int // leased vehicles left out: removed as absent
}

// WriteSnapshot writes a snapshot of one fleet of reg to w, in
// registration-number order: every vehicle of the fleet but those left
// out, each stating the lessee it should have. The generated registry's
// periods all lie before changesStart, so a lessee open on any later
// processing date is one without an end date, and new lessees start on
// changesStart. Each row's reference names the operation it should
// derive ("S0000001-keep"), or "-duplicate".
func WriteSnapshot(w io.Writer, reg Registry, cfg SnapshotConfig) (SnapshotStats, error) {
	cfg = cfg.withDefaults()
	stats := SnapshotStats{Operations: map[lessee.Operation]int{}}
	fleet := cfg.FleetOwner
	if fleet == "" {
		fleet = reg.LargestFleet()
	}
	var vehicles []*lessee.Vehicle
	for i := range reg.Vehicles {
		if reg.Vehicles[i].Owner == fleet {
			vehicles = append(vehicles, &reg.Vehicles[i])
		}
	}
	if len(vehicles) == 0 {
		return stats, fmt.Errorf("generate snapshot: fleet owner %q owns no vehicle", fleet)
	}
	slices.SortFunc(vehicles, func(a, b *lessee.Vehicle) int {
		return strings.Compare(a.RegistrationNumber, b.RegistrationNumber)
	})
	r := newRand(cfg.Seed, "snapshot")
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	if err := cw.Write(SnapshotHeader); err != nil {
		return stats, err
	}
	write := func(v *lessee.Vehicle, id, name string, start lessee.Date, intent string) error {
		stats.Rows++
		ref := fmt.Sprintf("S%07d-%s", stats.Rows, intent)
		return cw.Write([]string{v.RegistrationNumber, v.VIN, id, name, string(start), ref})
	}
	var named []*lessee.Vehicle
	for _, v := range vehicles {
		var open *lessee.Period
		for i := range v.Periods {
			if v.Periods[i].End.IsZero() {
				open = &v.Periods[i]
			}
		}
		p := r.Float64()
		var err error
		switch {
		case open != nil && p < cfg.LeaveOut:
			stats.LeftOut++
			continue
		case open != nil && p < cfg.LeaveOut+cfg.Remove:
			stats.Operations[lessee.OpRemove]++
			err = write(v, "", "", "", string(lessee.OpRemove))
		case open != nil && p < cfg.LeaveOut+cfg.Remove+cfg.Replace:
			id, idErr := lesseeID(r, cfg.Synthetic)
			if idErr != nil {
				return stats, idErr
			}
			stats.Operations[lessee.OpReplace]++
			err = write(v, id, "Ny Leietaker", changesStart, string(lessee.OpReplace))
		case open != nil:
			stats.Operations[lessee.OpKeep]++
			err = write(v, open.LesseeID, open.LesseeName, open.Start, string(lessee.OpKeep))
		case p < cfg.Add:
			id, idErr := lesseeID(r, cfg.Synthetic)
			if idErr != nil {
				return stats, idErr
			}
			stats.Operations[lessee.OpAdd]++
			err = write(v, id, "Ny Leietaker", changesStart, string(lessee.OpAdd))
		default:
			stats.Operations[lessee.OpKeep]++
			err = write(v, "", "", "", string(lessee.OpKeep))
		}
		if err != nil {
			return stats, err
		}
		named = append(named, v)
		if r.Float64() < cfg.Duplicate {
			// A vehicle named earlier, by VIN alone.
			d := named[r.IntN(len(named))]
			stats.Duplicates++
			if err := write(&lessee.Vehicle{VIN: d.VIN}, "", "", "", "duplicate"); err != nil {
				return stats, err
			}
		}
	}
	stats.Operations[lessee.OpRemove] += stats.LeftOut
	cw.Flush()
	if err := cw.Error(); err != nil {
		return stats, err
	}
	return stats, bw.Flush()
}
