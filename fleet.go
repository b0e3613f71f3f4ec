package lessee

// FleetVehicle is one line of a fleet owner's fleet export
// (exports/<orgnr>/fleet.csv): a vehicle the fleet owner owns on the day
// the export is written, with the lessee period open that day.
type FleetVehicle struct {
	// RegistrationNumber is the vehicle's registration number, normalised
	// as the registry holds it; exports list vehicles in its order.
	RegistrationNumber string
	// VIN is the vehicle identification number.
	VIN string
	// Lessee is the period open on the export's day: begun on or before
	// it and not ended by it (no end date, or an end date after it; see
	// Period.OpenOn). It is nil when the vehicle has no lessee that day.
	// Should the registry hold two periods open on one day, which the
	// rules forbid, it is the one that began last.
	Lessee *Period
}

// DueExport names a fleet whose export is due to be rewritten, and the
// count of changes to it (its version) when it was found due: an export
// written after that includes at least those changes.
type DueExport struct {
	OrgNr   string
	Version int64
}
