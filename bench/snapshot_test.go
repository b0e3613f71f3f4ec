package bench

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/gen"
)

// TestFleetRegistry checks that the generated registry's largest fleet has
// exactly the vehicles asked for, and that the snapshot of it states that
// fleet.
func TestFleetRegistry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ fleet, enterprises int }{{3000, DefaultFleetEnterprises}, {1000, 2}, {500, 30}} {
		dir := t.TempDir()
		reg, owner, err := fleetRegistry(filepath.Join(dir, "registry"), tc.fleet, tc.enterprises, 3)
		if err != nil {
			t.Fatal(err)
		}
		want := fleetState(reg, owner)
		if reg.LargestFleet() != owner || len(want) != tc.fleet {
			t.Errorf("%d enterprises: largest fleet %s has %d vehicles, want %s with %d", tc.enterprises, reg.LargestFleet(), len(want), owner, tc.fleet)
		}
		if tc.enterprises == 2 && len(reg.Vehicles) != tc.fleet {
			t.Errorf("2 enterprises: %d vehicles, want only the fleet's %d", len(reg.Vehicles), tc.fleet)
		}
		path := filepath.Join(dir, "snapshot.csv")
		stats, err := writeSnapshot(path, reg, gen.SnapshotConfig{Seed: 3, FleetOwner: owner})
		if err != nil {
			t.Fatal(err)
		}
		leasedBefore := 0
		for _, id := range want {
			if id != "" {
				leasedBefore++
			}
		}
		if err := applySnapshot(want, path); err != nil {
			t.Fatal(err)
		}
		leased := 0
		for _, id := range want {
			if id != "" {
				leased++
			}
		}
		// Leased after = before - removed (named or left out) + added.
		if got := leasedBefore - stats.Operations[lessee.OpRemove] + stats.Operations[lessee.OpAdd]; leased != got || len(want) != tc.fleet {
			t.Errorf("after the snapshot %d of %d vehicles leased, want %d (plan %+v)", leased, len(want), got, stats)
		}
	}
}

// TestSnapshotIntents checks the receipt check counts a line whose
// operation or outcome is not the one its reference names.
func TestSnapshotIntents(t *testing.T) {
	t.Parallel()
	head := "\ufeffrow,reference,operation,registration_number,vin,lessee,status,code,message,change_id\n"
	good := head + `2,S0000001-keep,keep,AB12345,VIN1,,unchanged,,,
3,S0000002-add,add,AB12346,VIN2,x,applied,,,c1
4,S0000003-duplicate,,,VIN1,,rejected,DUPLICATE_VEHICLE,,
5,S0000004-replace,replace,AB12347,VIN3,y,applied,,,c2
6,S0000005-remove,remove,AB12348,VIN4,,applied,,,c3
,,remove,AB12349,VIN5,,applied,,,c4
`
	chk, err := snapshotIntents(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if chk.rows != 6 || chk.absent != 1 || chk.mismatches != 0 || chk.counts != [3]int{4, 1, 1} ||
		chk.ops[lessee.OpRemove] != 2 || chk.ops[lessee.OpKeep] != 1 || len(chk.ops) != 4 {
		t.Errorf("good receipt: %+v", chk)
	}
	for _, bad := range []string{
		"2,S0000001-keep,add,AB12345,VIN1,x,applied,,,c1\n",                    // another operation
		"2,S0000001-add,add,AB12345,VIN1,x,rejected,LESSEE_CONFLICT,,\n",       // rejected
		"2,S0000001-duplicate,keep,AB12345,VIN1,,unchanged,,,\n",               // not refused as a duplicate
		",,remove,AB12349,VIN5,,rejected,TOO_MANY_REMOVALS,,\n",                // absent, not removed
		"2,S0000001-remove,remove,AB12345,VIN1,,rejected,END_BEFORE_START,,\n", // rejected remove
	} {
		chk, err := snapshotIntents(strings.NewReader(head + bad))
		if err != nil || chk.mismatches != 1 || chk.first == "" {
			t.Errorf("%q: %d mismatches, %v", bad, chk.mismatches, err)
		}
	}
}

// TestExportCheck checks the export check counts wrong lessees, vehicles
// out of order, of another fleet or missing.
func TestExportCheck(t *testing.T) {
	t.Parallel()
	want := func() map[string]string {
		return map[string]string{"AA10000": "p1", "AA10001": "", "AA10002": "p3"}
	}
	head := "registration_number,vin,lessee_id,lessee_name,start_date,end_date\n"
	var x ExportRun
	if err := x.check(strings.NewReader(head+"AA10000,V0,p1,,2020-01-01,\nAA10001,V1,,,,\nAA10002,V2,p3,,2021-01-01,\n"), want()); err != nil {
		t.Fatal(err)
	}
	if x.Rows != 3 || x.Leased != 2 || x.Mismatches != 0 {
		t.Errorf("good export: %+v", x)
	}
	for body, n := range map[string]int{
		"AA10000,V0,p9,,,\nAA10001,V1,,,,\nAA10002,V2,p3,,,\n":                 1, // wrong lessee
		"AA10000,V0,p1,,,\nAA10002,V2,p3,,,\nAA10001,V1,,,,\n":                 1, // out of order
		"AA10000,V0,p1,,,\nAA10001,V1,,,,\n":                                   1, // one missing
		"AA10000,V0,p1,,,\nAA10001,V1,,,,\nAA10002,V2,p3,,,\nAA10003,V3,,,,\n": 1, // another fleet's
		"AA10000,V0,p1,,,\n": 2, // two missing
	} {
		var x ExportRun
		if err := x.check(strings.NewReader(head+body), want()); err != nil {
			t.Fatal(err)
		}
		if x.Mismatches != n || x.FirstMismatch == "" {
			t.Errorf("%q: %d mismatches (%s), want %d", body, x.Mismatches, x.FirstMismatch, n)
		}
	}
}
