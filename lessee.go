// Package lessee holds the domain of lessee change ingestion: the changes a
// leasing company submits, the registry state they are judged against, and the
// outcomes and codes that the receipt reports. It imports no adapter; ingest,
// validate, storage and worker all speak in these types.
package lessee

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operation is what a row asks the registry to do.
type Operation string

// Operations a row may ask for.
const (
	OpAdd    Operation = "add"    // open a lessee period
	OpRemove Operation = "remove" // close the open lessee period

	// Operations a snapshot row is derived into (besides add and remove).
	OpKeep    Operation = "keep"    // the registry already holds the row's lessee
	OpReplace Operation = "replace" // close another lessee's period and open the row's
)

// Mode is how a file states what it wants: changes, or the whole desired
// lessee state of one fleet.
type Mode string

// File modes, as the summary's "mode" key names them.
const (
	ModeChanges  Mode = "changes"  // inbox/ and dryrun/: one operation per row
	ModeSnapshot Mode = "snapshot" // snapshot/ and dryrun-snapshot/: derived operations
)

// Status is the outcome class of one row.
type Status string

// Row statuses, as written in receipts.
const (
	StatusApplied   Status = "applied"
	StatusUnchanged Status = "unchanged"
	StatusRejected  Status = "rejected"
)

// Code names why a row was rejected or a file refused. Codes are part of the
// public API: documented in the README, never renamed.
type Code string

// Row codes, in the order the checks run.
const (
	// The row's own fields.
	CodeMissingField      Code = "MISSING_FIELD"
	CodeInvalidOperation  Code = "INVALID_OPERATION"
	CodeInvalidRegNumber  Code = "INVALID_REGISTRATION_NUMBER"
	CodeInvalidVIN        Code = "INVALID_VIN"
	CodeInvalidLesseeID   Code = "INVALID_LESSEE_ID"
	CodeInvalidOnBehalfOf Code = "INVALID_ON_BEHALF_OF"
	CodeInvalidDate       Code = "INVALID_DATE"
	CodeEndBeforeStart    Code = "END_BEFORE_START"
	CodeRaggedRow         Code = "RAGGED_ROW"
	CodeFieldTooLong      Code = "FIELD_TOO_LONG"
	CodeTermsNotAccepted  Code = "TERMS_NOT_ACCEPTED"
	CodeNotFleetOwner     Code = "NOT_FLEET_OWNER"
	CodeNoDelegation      Code = "NO_DELEGATION"
	CodeDelegationExpired Code = "DELEGATION_EXPIRED"
	CodeVehicleNotFound   Code = "VEHICLE_NOT_FOUND"
	CodeRegVINMismatch    Code = "REG_VIN_MISMATCH"
	CodeNotOwner          Code = "NOT_OWNER"
	CodeLesseeConflict    Code = "LESSEE_CONFLICT"
	CodeNoActiveLessee    Code = "NO_ACTIVE_LESSEE"
	CodeLesseeMismatch    Code = "LESSEE_MISMATCH"
	// CodeDuplicateVehicle rejects a snapshot row naming a vehicle that an
	// earlier row of the file named.
	CodeDuplicateVehicle Code = "DUPLICATE_VEHICLE"
)

// File-level refusal codes: the whole file is refused and no row applied.
const (
	CodeUnsupportedFormat Code = "UNSUPPORTED_FORMAT"
	CodeEncodingError     Code = "ENCODING_ERROR"
	CodeMissingHeader     Code = "MISSING_HEADER"
	CodeMissingColumn     Code = "MISSING_COLUMN"
	CodeDuplicateColumn   Code = "DUPLICATE_COLUMN"
	CodeFileTooLarge      Code = "FILE_TOO_LARGE"
	CodeTooManyRows       Code = "TOO_MANY_ROWS"
	CodeTooManyColumns    Code = "TOO_MANY_COLUMNS"
	CodeCellTooLarge      Code = "CELL_TOO_LARGE"
	CodeExpandsTooLarge   Code = "EXPANDS_TOO_LARGE"
	CodeEncryptedWorkbook Code = "ENCRYPTED_WORKBOOK"
	CodeInvalidKey        Code = "INVALID_KEY"
	// CodeTermsNotAccepted doubles as a file-level code when the submitter has
	// accepted no agreement at all.
	CodeProcessingFailed Code = "PROCESSING_FAILED" // retries exhausted; re-upload
	// Snapshot refusals.
	CodeTooManyRemovals  Code = "TOO_MANY_REMOVALS"  // absent vehicles over the safety threshold
	CodeMixedFleetOwners Code = "MIXED_FLEET_OWNERS" // a snapshot names two fleet owners
)

// Codes lists every code a receipt or an API answer may carry: the row
// codes and the file-level refusal codes, in the order declared above.
// (The application error codes of error.go classify Go errors and are
// never shown.)
func Codes() []Code {
	return []Code{
		CodeMissingField, CodeInvalidOperation, CodeInvalidRegNumber, CodeInvalidVIN,
		CodeInvalidLesseeID, CodeInvalidOnBehalfOf, CodeInvalidDate, CodeEndBeforeStart,
		CodeRaggedRow, CodeFieldTooLong, CodeTermsNotAccepted, CodeNotFleetOwner,
		CodeNoDelegation, CodeDelegationExpired, CodeVehicleNotFound, CodeRegVINMismatch,
		CodeNotOwner, CodeLesseeConflict, CodeNoActiveLessee, CodeLesseeMismatch,
		CodeDuplicateVehicle,
		CodeUnsupportedFormat, CodeEncodingError, CodeMissingHeader, CodeMissingColumn,
		CodeDuplicateColumn, CodeFileTooLarge, CodeTooManyRows, CodeTooManyColumns,
		CodeCellTooLarge, CodeExpandsTooLarge, CodeEncryptedWorkbook, CodeInvalidKey,
		CodeProcessingFailed, CodeTooManyRemovals, CodeMixedFleetOwners,
	}
}

// Agreement names a terms agreement an enterprise can accept.
type Agreement string

// The two agreements of the registry's API for leasing companies.
const (
	AgreementLesseeAPI  Agreement = "lessee_api"  // act on one's own vehicles
	AgreementThirdParty Agreement = "third_party" // act for fleet owners
)

// Date is a civil date in ISO form, YYYY-MM-DD. Its zero value "" means no
// date. ISO strings compare in date order, which SQL and Go both rely on.
type Date string

// DateOf returns the civil date of t in t's location.
func DateOf(t time.Time) Date { return Date(t.Format(time.DateOnly)) }

// IsZero reports whether d is the empty date.
func (d Date) IsZero() bool { return d == "" }

// Before reports whether d is strictly before e. Both must be non-zero.
func (d Date) Before(e Date) bool { return d < e }

// Column is a canonical input column.
type Column int

// The canonical columns of a change file, in receipt order.
const (
	ColOperation Column = iota
	ColRegistrationNumber
	ColVIN
	ColLesseeID
	ColLesseeName
	ColStartDate
	ColEndDate
	ColOnBehalfOf
	ColReference
	NumColumns // number of canonical columns; not a column
)

var columnNames = [NumColumns]string{
	"operation", "registration_number", "vin", "lessee_id", "lessee_name",
	"start_date", "end_date", "on_behalf_of", "reference",
}

// String returns the canonical (English) column name.
func (c Column) String() string {
	if c < 0 || c >= NumColumns {
		return "unknown"
	}
	return columnNames[c]
}

// Cell is one input value. Kind tells validate how the source typed it, so that
// an XLSX number where an identifier belongs can be refused rather than guessed.
type Cell struct {
	Value string
	Kind  CellKind
}

// CellKind is how the source file typed a cell.
type CellKind uint8

// Cell kinds. CSV cells are always CellText.
const (
	CellText   CellKind = iota
	CellNumber          // a numeric spreadsheet cell, Value as Excel displays it raw
	CellDate            // a date-formatted spreadsheet cell, Value already YYYY-MM-DD
)

// RawRow is one data record as read from a file, before validation.
type RawRow struct {
	// Index is the 0-based position of the record among data records; it
	// orders results and checkpoints.
	Index int
	// Line is the row number a spreadsheet shows for the record (header = 1).
	Line int
	// Cells holds the canonical columns; absent columns are empty.
	Cells [NumColumns]Cell
	// Problem is set when the reader itself could not make a clean record of
	// the line (for example a wrong number of fields).
	Problem *Problem
}

// Problem is a row-level failure: which field, which code, and a message a
// person can act on. It is a value that goes into the receipt, not a Go error.
type Problem struct {
	Code    Code
	Message string // begins with the canonical column name it concerns
	// Text is Message before it was put into a language, so that it can be
	// written again in the submitter's (see package message); zero when
	// Message is all there is.
	Text Text
}

// Language is the language the messages to a submitter are written in.
// Codes, column names and statuses are never translated.
type Language string

// The languages messages are written in.
const (
	Norwegian Language = "nb" // bokmål
	English   Language = "en"
)

// ParseLanguage reads a language as enterprises.csv and --default-language
// write it: "nb" or "en", in any case; "" is the zero Language (the
// default). ok is false for anything else.
func ParseLanguage(s string) (l Language, ok bool) {
	switch Language(strings.ToLower(strings.TrimSpace(s))) {
	case "":
		return "", true
	case Norwegian:
		return Norwegian, true
	case English:
		return English, true
	}
	return "", false
}

// Or returns l, or def when l is the zero Language.
func (l Language) Or(def Language) Language {
	if l == "" {
		return def
	}
	return l
}

// Text is a message of the catalogue (package message) not yet put into
// a language: the key of its entry and its arguments. An argument is
// written as fmt's %v writes it, except a Text, which is written in the
// same language as the message around it.
type Text struct {
	Key  string
	Args []any
	// Field is the canonical column name the message concerns, written
	// before it ("vin: …"); "" for none.
	Field string
}

// IsZero reports whether t names no message.
func (t Text) IsZero() bool { return t.Key == "" }

// Change is a syntactically valid row: identifiers checked and normalised,
// dates parsed.
type Change struct {
	Operation          Operation
	RegistrationNumber string // normalised: upper case, no spaces or dashes
	VIN                string // upper case
	LesseeID           string // digits only; person or enterprise
	LesseeName         string
	StartDate          Date // required for add
	EndDate            Date // optional for add; for remove defaults to the processing date
	OnBehalfOf         string
	Reference          string
}

// EffectiveDate is the date on which ownership, role and delegation are
// judged: the start for add, the end for remove.
func (c Change) EffectiveDate() Date {
	if c.Operation == OpAdd {
		return c.StartDate
	}
	return c.EndDate
}

// Row is one record after field validation: either a Change or a Problem.
type Row struct {
	Index   int
	Line    int
	Echo    Echo // what the receipt echoes back, whatever the outcome
	Change  Change
	Problem *Problem // non-nil: rejected on its own fields
}

// Echo holds the values a receipt repeats from the input row. Lessee is
// already masked when it is a personal identity number.
type Echo struct {
	Reference          string
	Operation          string
	RegistrationNumber string
	VIN                string
	Lessee             string
}

// Enterprise is an organisation known to the registry.
type Enterprise struct {
	OrgNr      string
	Name       string
	FleetOwner bool
	// Language is what its receipts and API answers are written in; the
	// zero Language means the service's default.
	Language Language
	Terms    []Acceptance
}

// Accepted reports whether the enterprise accepted any version of agreement a
// at or before t.
func (e *Enterprise) Accepted(a Agreement, t time.Time) bool {
	for _, acc := range e.Terms {
		if acc.Agreement == a && !acc.AcceptedAt.After(t) {
			return true
		}
	}
	return false
}

// AcceptedAny reports whether the enterprise accepted any agreement at or
// before t. An enterprise that has not may submit nothing at all: its
// whole file is refused.
func (e *Enterprise) AcceptedAny(t time.Time) bool {
	for _, acc := range e.Terms {
		if !acc.AcceptedAt.After(t) {
			return true
		}
	}
	return false
}

// Acceptance records that an enterprise accepted a version of an agreement.
type Acceptance struct {
	OrgNr      string
	Agreement  Agreement
	Version    string
	AcceptedAt time.Time
}

// Delegation lets Delegate act for FleetOwner in lessee matters from
// ValidFrom to ValidTo (inclusive; zero means open-ended) unless revoked.
type Delegation struct {
	FleetOwner string
	Delegate   string
	ValidFrom  Date
	ValidTo    Date
	RevokedAt  *time.Time
}

// Vehicle is a registered vehicle with its current owner and lessee history.
type Vehicle struct {
	VIN                string
	RegistrationNumber string
	Owner              string
	OwnerSince         Date
	Periods            []Period // lessee periods, oldest first
}

// Period is one lessee period of a vehicle. End is zero while open-ended.
type Period struct {
	ID         string
	LesseeID   string
	LesseeName string
	Start      Date
	End        Date
}

// OpenOn reports whether the period counts as open on date d: no end date,
// or an end date after d.
func (p Period) OpenOn(d Date) bool { return p.End.IsZero() || d < p.End }

// State is the part of the registry a chunk of rows is judged against. The
// decider changes it in place as it applies rows, so that later rows of the
// same file see earlier ones (remove then add on one vehicle works).
type State struct {
	Enterprises map[string]*Enterprise     // by orgnr
	Delegations map[[2]string][]Delegation // by {fleet owner, delegate}
	Vehicles    map[string]*Vehicle        // by VIN
	ByReg       map[string]string          // registration number -> VIN
	// Named holds, for a snapshot, the VINs of the loaded vehicles that an
	// earlier row of the file named: a later row naming one again is a
	// DUPLICATE_VEHICLE. The decider adds to it as it goes.
	Named map[string]bool
}

// NewState returns an empty State ready to fill.
func NewState() *State {
	return &State{
		Enterprises: map[string]*Enterprise{},
		Delegations: map[[2]string][]Delegation{},
		Vehicles:    map[string]*Vehicle{},
		ByReg:       map[string]string{},
		Named:       map[string]bool{},
	}
}

// Result is what a receipt reports for one row, as stored with the job.
type Result struct {
	Index    int
	Line     int
	Echo     Echo
	Status   Status
	Code     Code // empty unless rejected
	Message  string
	ChangeID string // set when applied
}

// Outcome is the decision for one row: its Result and, when applied, the
// change it makes, which the audit log records.
type Outcome struct {
	Result

	// Set when applied.
	Operation          Operation // the change made
	VIN                string    // the vehicle's
	RegistrationNumber string    // the vehicle's, as registered
	OnBehalfOf         string    // the fleet owner acted for
	Before             *Period   // the period in force before the change, if any
	After              *Period   // the period as it stands after the change
}

// PeriodWrite is one lessee period a chunk writes, in its final state
// after every row of the chunk.
type PeriodWrite struct {
	VIN    string
	Period Period
	Line   int // row of the last outcome that changed it
}

// Writes are the registry writes of a chunk: what storage persists.
type Writes struct {
	Opened []PeriodWrite // periods the chunk opened: insert
	Closed []PeriodWrite // periods that existed before it: set End
}

// WriteSet collects, as rows are decided, the periods they open and close,
// in the order first touched; Writes then reads each from the state as it
// ends up after every row. Its zero value is ready to use.
type WriteSet struct {
	touched []touched
	byID    map[string]int // period id -> index in touched
}

type touched struct {
	vin, id string
	opened  bool // opened by the chunk: an insert, not an update
	line    int  // row of the last change
}

// Note records that the row on line opened (or closed) period id of vin.
func (w *WriteSet) Note(vin, id string, opened bool, line int) {
	if i, ok := w.byID[id]; ok {
		w.touched[i].line = line
		return
	}
	if w.byID == nil {
		w.byID = map[string]int{}
	}
	w.byID[id] = len(w.touched)
	w.touched = append(w.touched, touched{vin: vin, id: id, opened: opened, line: line})
}

// Writes reads each noted period as it stands in st. Every noted period
// must be in st (Decide notes only periods it has just put there or
// changed); a missing one is a programming error and panics.
func (w *WriteSet) Writes(st *State) Writes {
	var out Writes
	for _, t := range w.touched {
		v := st.Vehicles[t.vin]
		i := slices.IndexFunc(v.Periods, func(p Period) bool { return p.ID == t.id })
		pw := PeriodWrite{VIN: t.vin, Period: v.Periods[i], Line: t.line}
		if t.opened {
			out.Opened = append(out.Opened, pw)
		} else {
			out.Closed = append(out.Closed, pw)
		}
	}
	return out
}

// Decision is the judgement of a chunk of rows: one Outcome per row and the
// writes that carry the applied ones into the registry.
type Decision struct {
	Outcomes []Outcome
	Writes   Writes
	// Named lists the VINs a snapshot's rows named for the first time
	// (see State.Named); storage keeps them for the file's later chunks.
	Named []string
}

// ChangeID names the change an applied row makes: the job id, a dash and the
// row's 0-based data record index ("job42-7"). It depends on nothing else, so
// a retried job names its changes alike and storage can deduplicate on it.
// A period opened by a row has the row's change id as its id.
func ChangeID(jobID string, index int) string {
	return jobID + "-" + strconv.Itoa(index)
}

// ChunkTurn places a chunk of a file after the one before it, so that the
// two can be in flight at once: the chunk may lock, decide and write while
// the one before commits, and commits only after it.
type ChunkTurn struct {
	// Locked is called once the chunk holds its vehicles' row locks (or
	// has given up before taking them); the next chunk may take its own
	// only then, so that a vehicle both name is always the earlier
	// chunk's first.
	Locked func()
	// Prior waits for the chunk before to end and returns its error; the
	// chunk commits only after a nil. Nil means no chunk is in flight
	// before it.
	Prior func(context.Context) error
}

// Keys names what a chunk of rows needs loaded from the registry.
type Keys struct {
	VINs       []string
	RegNumbers []string
	OrgNrs     []string // submitter and every fleet owner acted for

	// Since holds, by VIN and by registration number, the earliest date
	// any row of the chunk gives for that vehicle. A period that ended
	// before it is neither open on nor ending on any of those rows' dates,
	// so it cannot decide them and need not be loaded: a vehicle with years
	// of history costs its open periods, not all of them. A vehicle
	// without an entry (or with the zero date) needs its whole history.
	Since map[string]Date
}

// HistoryFrom returns the earliest date the periods of a vehicle with this
// VIN and registration number must be loaded from: periods that ended
// before it may be left out. The zero Date means all of them.
func (k Keys) HistoryFrom(vin, registrationNumber string) Date {
	a, aok := k.Since[vin]
	b, bok := k.Since[registrationNumber]
	switch {
	case !aok && !bok:
		return ""
	case !aok:
		return b
	case !bok:
		return a
	}
	return min(a, b)
}

// JobState is where a file is in its processing.
type JobState string

// Job states. A job is finished when completed or refused.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobCompleted JobState = "completed" // rows processed, receipt published
	JobRefused   JobState = "refused"   // whole file refused, receipt published
)

// Format is the detected format of an input file.
type Format string

// Input formats.
const (
	FormatCSV  Format = "csv"
	FormatXLSX Format = "xlsx"
)

// Job is one uploaded object version being processed. Its ID is derived from
// bucket, key and version, so every sighting of one upload names one job.
type Job struct {
	ID        string
	Bucket    string
	Key       string
	Version   string
	Submitter string
	Name      string // the file name below inbox/<orgnr>/
	Format    Format
	Size      int64
	SHA256    string
	State     JobState
	Code      Code // refusal code
	Message   string
	RowsTotal int
	RowsDone  int // checkpoint: data records with a stored result
	Applied   int
	Unchanged int
	Rejected  int
	Codes     map[Code]int
	// Mode and DryRun come from the key's prefix: inbox/ is changes,
	// snapshot/ a snapshot, dryrun/ and dryrun-snapshot/ their dry runs.
	Mode   Mode
	DryRun bool
	// Operations counts a snapshot's outcomes by derived operation.
	Operations map[Operation]int
	// FileRows is the number of data records of the file; a snapshot's
	// RowsTotal adds the removals of the vehicles it left out. Zero means
	// RowsTotal.
	FileRows       int
	IgnoredColumns []string
	ProcessingDate Date // fixed at first start so retries decide alike
	// Language is what the job's messages are written in: the submitter's,
	// or the default. It is not stored: each attempt reads it from the
	// registry (zero until then).
	Language Language
	Started  time.Time
	Finished time.Time
	// Attempt is the fencing token of the attempt that last started, and
	// PublishedAttempt the attempt whose receipts became the job's.
	Attempt          int
	PublishedAttempt int
	// PinnedETag is the ETag of the private copy of the upload every
	// attempt reads; "" until the first attempt took it.
	PinnedETag string
	// History is the folder of the job's own receipts once they are
	// there; HistoryRemoved says the retention sweep removed them.
	History        string
	HistoryRemoved bool
	// Uploaded is when the upload was made, to the second (zero when not
	// known): the newest upload under a name owns its latest receipt.
	Uploaded time.Time
}

// Object describes a stored object: what a listing or HEAD tells.
type Object struct {
	Key       string
	Size      int64
	ETag      string // without quotes
	VersionID string
	// LastModified comes from the store: a listing may give milliseconds
	// while HEAD and GET give whole seconds.
	LastModified time.Time
}

// Upload names one uploaded object version to process. Every sighting of
// an upload (scan, event, SFTP, submit) names it alike; see package intake.
type Upload struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Version string `json:"version"`
	ETag    string `json:"etag"`
	Size    int64  `json:"size"`
}

// AbsentVehicle is one vehicle of a snapshot's frozen list of the fleet's
// vehicles with a lessee that the file leaves out: Seq is its place in
// the list (registration-number order).
type AbsentVehicle struct {
	Seq                int
	VIN                string
	RegistrationNumber string
}

// APICall is one call of the single-change API, as storage records it.
type APICall struct {
	RequestID      string // unique per call; names the change and its audit entry
	Submitter      string // the organisation the token names
	IdempotencyKey string // "" for none
	RequestHash    string // a hash of the request, compared on a repeated key
}

// JobID is the job id the call's change is recorded under: its change id
// is ChangeID(JobID(), 0), also the id of a period it opens.
func (c APICall) JobID() string { return "api-" + c.RequestID }

// APIChange is one change of a batch the single-change API applies in one
// transaction: its call, what its state needs (Keys), how it is decided
// (Decide must return one outcome) and how its outcome is answered.
type APIChange struct {
	Call   APICall
	Keys   Keys
	Decide func(*State) Decision
	Answer func(Outcome) (APIAnswer, error)
}

// APIResult is what became of one change of a batch.
type APIResult struct {
	Answer   APIAnswer
	Replayed bool  // the answer kept under the call's idempotency key
	Err      error // this change's own failure (a reused idempotency key)
	// Again: the change was not decided in this batch, because an earlier
	// change of the batch names the same vehicle or idempotency key; it
	// must be applied in a later batch, after the one it yielded to.
	Again bool
}

// MergeKeys returns what a chunk of all of ks's changes needs loaded: every
// vehicle and organisation of each, and for each vehicle the earliest date
// any of them needs its history from.
func MergeKeys(ks ...Keys) Keys {
	out := Keys{Since: map[string]Date{}}
	for _, k := range ks {
		out.VINs = append(out.VINs, k.VINs...)
		out.RegNumbers = append(out.RegNumbers, k.RegNumbers...)
		out.OrgNrs = append(out.OrgNrs, k.OrgNrs...)
		for _, key := range append(slices.Clip(k.VINs), k.RegNumbers...) {
			d, ok := k.Since[key] // absent: the whole history, as the zero Date
			if prev, seen := out.Since[key]; seen {
				d = min(prev, d)
			}
			if !ok {
				d = ""
			}
			out.Since[key] = d
		}
	}
	for _, l := range []*[]string{&out.VINs, &out.RegNumbers, &out.OrgNrs} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return out
}

// APIAnswer is what the single-change API answers: an HTTP status and a
// JSON body, kept byte for byte under an idempotency key.
type APIAnswer struct {
	Status int
	Body   []byte
}
