// Package export writes a fleet owner's fleet export,
// exports/<orgnr>/fleet.csv: every vehicle the fleet owner owns on the day
// it is written (today in Europe/Oslo), in registration-number order, with
// the lessee period open that day.
//
// The file is a valid snapshot (see the README): a header row
// registration_number,vin,lessee_id,lessee_name,start_date,end_date, comma
// separated, UTF-8 without BOM, LF line ends, quoted where a value needs
// it, so that uploaded unchanged to snapshot/ every line is a keep. Lessee
// ids are not masked: it is the fleet owner's own registry data, behind
// its own prefix.
//
// A Writer streams the fleet from its FleetSource into a temporary file
// and then puts it with one object write, so that a reader sees the
// previous export or the new one, never part of one; memory does not grow
// with the fleet. When exports are written (debounced after changes, and
// by `lessee export`) is for its callers: package worker and cmd/lessee.
package export
