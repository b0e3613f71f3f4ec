package validate_test

import (
	"fmt"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/validate"
)

// Decide judges a chunk of rows against the registry state storage loaded
// for it, in file order: here a remove and then an add on one vehicle, and
// an add on a vehicle of another fleet owner. It returns one outcome per
// row and the registry writes of the applied ones, which storage persists.
func ExampleDecide() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st := lessee.NewState()
	st.Enterprises["912345602"] = &lessee.Enterprise{OrgNr: "912345602", FleetOwner: true,
		Terms: []lessee.Acceptance{{OrgNr: "912345602", Agreement: lessee.AgreementLesseeAPI, AcceptedAt: now.AddDate(-1, 0, 0)}}}
	st.Vehicles["WVWZZZ1KZAW000004"] = &lessee.Vehicle{VIN: "WVWZZZ1KZAW000004", RegistrationNumber: "EL10004",
		Owner: "912345602", OwnerSince: "2020-01-01",
		Periods: []lessee.Period{{ID: "p1", LesseeID: "24126834558", Start: "2024-03-01"}}}
	st.ByReg["EL10004"] = "WVWZZZ1KZAW000004"
	st.Vehicles["WVWZZZ1KZAW000099"] = &lessee.Vehicle{VIN: "WVWZZZ1KZAW000099", RegistrationNumber: "FJ20001",
		Owner: "912345610", OwnerSince: "2020-01-01"}
	st.ByReg["FJ20001"] = "WVWZZZ1KZAW000099"

	job := validate.Job{ID: "job1", Submitter: "912345602", ProcessingDate: "2026-03-01", Now: now}
	cells := func(op, reg, lesseeID, start, end string) [lessee.NumColumns]lessee.Cell {
		var c [lessee.NumColumns]lessee.Cell
		c[lessee.ColOperation].Value, c[lessee.ColRegistrationNumber].Value = op, reg
		c[lessee.ColLesseeID].Value, c[lessee.ColStartDate].Value, c[lessee.ColEndDate].Value = lesseeID, start, end
		return c
	}
	var rows []lessee.Row
	for i, c := range [][lessee.NumColumns]lessee.Cell{
		cells("remove", "EL10004", "", "", "2026-02-01"),
		cells("add", "EL10004", "28026630179", "2026-02-01", ""),
		cells("add", "FJ20001", "28026630179", "2026-02-01", ""),
	} {
		rows = append(rows, validate.ParseRow(validate.Config{}, job, lessee.RawRow{Index: i, Line: i + 2, Cells: c}))
	}

	d := validate.Decide(validate.Config{}, job, st, rows)
	for _, o := range d.Outcomes {
		fmt.Printf("row %d: %s %s%s\n", o.Line, o.Status, o.Code, o.ChangeID)
	}
	for _, w := range d.Writes.Closed {
		fmt.Println("close", w.Period.ID, "at", w.Period.End)
	}
	for _, w := range d.Writes.Opened {
		fmt.Println("open", w.Period.ID, "from", w.Period.Start)
	}
	// Output:
	// row 2: applied job1-0
	// row 3: applied job1-1
	// row 4: rejected NOT_OWNER
	// close p1 at 2026-02-01
	// open job1-1 from 2026-02-01
}
